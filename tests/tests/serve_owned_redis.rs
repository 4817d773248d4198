//! `serve` with no Redis URL: it starts its own redis-server (unix socket, AOF in the data
//! dir), serves the manifest, drains on shutdown and stops that Redis.

use std::time::Duration;

use redwasm_tests::{client, workspace_manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_owns_a_redis_server_and_stops_it_on_shutdown() {
    let data = tempfile_dir();
    let mut options = redwasm::serve::AppOptions::new(workspace_manifest());
    options.redis_data_dir = data.clone();
    // A free port: bind, read, release (serve binds it again).
    let port = redwasm_testkit::free_port();
    let listen = format!("127.0.0.1:{port}").parse().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(redwasm::serve::serve(options, Some(listen), async {
        let _ = stop_rx.await;
    }));

    let http = client();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{base}/health")).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let put = http
        .put(format!("{base}/v1/cache/owned/k"))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let get = http
        .get(format!("{base}/v1/cache/owned/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.text().await.unwrap(), "v");

    let socket = data.join("redis.sock");
    assert!(
        socket.exists(),
        "the owned redis listens on a unix socket in the data dir"
    );
    assert!(data.join("appendonlydir").exists(), "AOF is on");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_err(),
        "the owned redis-server was stopped"
    );
    let _ = std::fs::remove_dir_all(&data);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "redwasm-serve-test-{}-{}",
        std::process::id(),
        redwasm_testkit::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
