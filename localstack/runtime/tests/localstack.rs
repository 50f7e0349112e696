//! fmn-local against a real LocalStack (localstack-core 4.9.2 on the host, no Docker, from
//! `.venv-localstack`), one start for the whole test: LocalStack's CloudFormation refuses an
//! inline template over 51,200 bytes, as AWS does, and takes fmn's from S3 the way the local
//! runtime passes it; and `fmn-local up` finding a LocalStack that cannot create Lambda
//! functions says so in one sentence, with how to proceed, and stops.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is a failure with its reason

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use fmn_local::emulator::deploy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_takes_the_template_from_s3_and_up_explains_a_localstack_without_lambda() {
    let root = fmn_local::repo_root();
    let started = Instant::now();
    let localstack = fmn_emulator::LocalStack::start(&root, fmn_emulator::free_port().unwrap())
        .await
        .expect("LocalStack (run localstack/bootstrap.sh)");
    eprintln!("LocalStack: health check after {:?}", started.elapsed());
    let aws = fmn_emulator::config(&localstack.endpoint).await;
    let template = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    assert!(template.len() > deploy::INLINE_TEMPLATE_LIMIT);

    // 1. Inline, the template is refused, as AWS refuses it.
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let inline = cfn
        .create_stack()
        .stack_name("fmn-inline")
        .template_body(&template)
        .send()
        .await
        .expect_err("LocalStack refuses an inline template over 51,200 bytes");
    assert_eq!(inline.code(), Some("ValidationError"), "{inline:?}");
    assert!(
        inline
            .message()
            .unwrap_or_default()
            .contains("less than or equal to 51200"),
        "{inline:?}"
    );

    // 2. From the code bucket, at the URL the local runtime passes, it is accepted.
    let s3 = aws_sdk_s3::Client::new(&aws);
    s3.create_bucket()
        .bucket("fmn-ls-code")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("fmn-ls-code")
        .key("local/template.yaml")
        .body(template.clone().into_bytes().into())
        .send()
        .await
        .unwrap();
    let url = deploy::template_url("fmn-ls-code", "local/template.yaml");
    let summary = cfn
        .get_template_summary()
        .template_url(&url)
        .send()
        .await
        .expect("LocalStack reads the template from its S3");
    assert!(summary.parameters().len() > 20, "{summary:?}");
    let validated = cfn.validate_template().template_url(&url).send().await;
    assert!(validated.is_ok(), "{validated:?}");

    // 3. `fmn-local up` finds this LocalStack, learns that it cannot create Lambda functions
    //    (no Docker), says so in one sentence and stops, before starting anything.
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_fmn-local"))
            .args(["up", "--localstack-url", &localstack.endpoint])
            .args([
                "--moto-port",
                &fmn_emulator::free_port().unwrap().to_string(),
            ])
            .env("RUST_LOG", "warn")
            .env_remove("RUST_BACKTRACE")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("fmn-local up stops by itself")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("fmn-local up, after {:?}: {stderr}", started.elapsed());
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one sentence: {stderr}");
    let line = lines[0];
    assert!(
        line.starts_with(&format!(
            "The LocalStack at {} cannot create Lambda functions (",
            localstack.endpoint
        )),
        "{line}"
    );
    assert!(
        line.contains("start LocalStack with Docker")
            && line.ends_with("or stop it to use the embedded moto server."),
        "{line}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    localstack.stop().await;
}
