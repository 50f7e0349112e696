//! Secrets named by `*_SSM_PARAMETER` variables are read from SSM Parameter Store (a real
//! moto server) as a function starts; a missing one stops it, naming the variable.

use std::collections::HashMap;
use std::path::PathBuf;

use fmn_lambda::Vars;

#[tokio::test]
async fn secrets_come_from_ssm_and_a_missing_one_names_its_variable() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmn-lambda-moto");
    let moto = fmn_emulator::SharedMoto::get(&root, &dir)
        .await
        .expect("moto");
    let ssm = aws_sdk_ssm::Client::new(&fmn_emulator::config(&moto.endpoint).await);
    let name = format!("/fmn-test-{}/link-secret", std::process::id());
    ssm.put_parameter()
        .name(&name)
        .value("kT3q9Vx2LmP8wR5nZc7bYh4sJd6fGa1e")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");

    let vars = Vars::new(HashMap::from([
        ("FMN_LINK_SECRET_SSM_PARAMETER".to_owned(), name.clone()),
        (
            "FMN_LINK_SECRET".to_owned(),
            "a plain value is ignored".to_owned(),
        ),
        ("FMN_TABLE".to_owned(), "t".to_owned()),
    ]));
    let resolved = fmn_lambda::secrets::resolve(vars, &ssm)
        .await
        .expect("resolved");
    assert_eq!(
        resolved.get("FMN_LINK_SECRET").as_deref(),
        Some("kT3q9Vx2LmP8wR5nZc7bYh4sJd6fGa1e"),
        "the decrypted SecureString replaces the variable"
    );
    assert_eq!(resolved.get("FMN_TABLE").as_deref(), Some("t"));

    let vars = Vars::new(HashMap::from([(
        "FMN_MATRIX_ACCESS_TOKEN_SSM_PARAMETER".to_owned(),
        format!("{name}-missing"),
    )]));
    let e = fmn_lambda::secrets::resolve(vars, &ssm)
        .await
        .expect_err("a missing parameter stops the function");
    let text = e.to_string();
    assert!(
        text.contains("FMN_MATRIX_ACCESS_TOKEN_SSM_PARAMETER") && text.contains("-missing"),
        "{text}"
    );
}
