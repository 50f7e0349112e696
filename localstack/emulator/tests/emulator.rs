//! Starting moto from the project venv (`localstack/bootstrap.sh` installs it): one of the
//! caller's own, and the one shared through lease files.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn queue_round_trip(endpoint: &str) {
    let sqs = aws_sdk_sqs::Client::new(&fmn_emulator::config(endpoint).await);
    let name = format!("fmn-emulator-test-{}", std::process::id());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("a queue URL");
    assert!(url.contains(&name), "{url}");
}

#[tokio::test]
async fn moto_starts_on_loopback_answers_and_stops() {
    let port = fmn_emulator::free_port().unwrap();
    let moto = fmn_emulator::Moto::start(&root(), port).await.unwrap();
    assert_eq!(moto.endpoint, format!("http://127.0.0.1:{port}"));
    queue_round_trip(&moto.endpoint).await;
    moto.stop().await;
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            || tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
        "moto still listening on {port}"
    );
}

#[tokio::test]
async fn the_shared_moto_is_one_server_for_every_caller() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmn-emulator-shared-test");
    let first = fmn_emulator::SharedMoto::get(&root(), &dir).await.unwrap();
    let second = fmn_emulator::SharedMoto::get(&root(), &dir).await.unwrap();
    assert_eq!(first.endpoint, second.endpoint);
    assert!(dir.join(format!("lease-{}", std::process::id())).exists());
    queue_round_trip(&first.endpoint).await;
}
