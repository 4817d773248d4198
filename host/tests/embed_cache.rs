//! The embedding API against a real redis-server: the same component, called in-process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redwasm::embed::{CacheError, EmbedError, Redwasm, SetOptions};
use redwasm_testkit::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_get_delete_and_stats() {
    let redis = RedisServer::start();
    let redwasm = Redwasm::connect(&redis.url()).await.unwrap();
    let cache = redwasm.cache().await.unwrap();

    assert!(cache.get("ns", "k").await.unwrap().is_none());
    let options = SetOptions {
        content_type: Some("text/plain".into()),
        ..SetOptions::ttl_s(60)
    };
    cache.set("ns", "k", b"value", &options).await.unwrap();
    let entry = cache.get("ns", "k").await.unwrap().expect("hit");
    assert_eq!(entry.value, b"value");
    assert_eq!(entry.content_type, "text/plain");
    assert!(!entry.stale);
    assert!(cache.delete("ns", "k").await.unwrap());
    assert!(!cache.delete("ns", "k").await.unwrap());
    let stats = cache.stats("ns").await.unwrap();
    assert_eq!((stats.hits, stats.misses, stats.keys), (1, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_errors_are_typed_not_traps() {
    let redis = RedisServer::start();
    let cache = Redwasm::connect(&redis.url())
        .await
        .unwrap()
        .cache()
        .await
        .unwrap();
    let too_large = vec![0u8; 1024 * 1024 + 1];
    match cache
        .set("ns", "big", &too_large, &SetOptions::default())
        .await
    {
        Err(EmbedError::Cache(CacheError::TooLarge(limit))) => assert_eq!(limit, 1024 * 1024),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    match cache.get("ns", "").await {
        Err(EmbedError::Cache(CacheError::Invalid(detail))) => {
            assert!(detail.contains("key"), "{detail}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // The instance that returned those errors is still healthy.
    cache
        .set("ns", "ok", b"1", &SetOptions::default())
        .await
        .unwrap();
    assert!(cache.get("ns", "ok").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_or_compute_computes_once_for_many_concurrent_callers() {
    let redis = RedisServer::start();
    let cache = Arc::new(
        Redwasm::connect(&redis.url())
            .await
            .unwrap()
            .cache()
            .await
            .unwrap(),
    );
    let computed = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let cache = cache.clone();
            let computed = computed.clone();
            tokio::spawn(async move {
                cache
                    .get_or_compute("reports", "daily", &SetOptions::ttl_s(60), || async move {
                        computed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, std::io::Error>(b"report".to_vec())
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), b"report");
    }
    assert_eq!(
        computed.load(Ordering::SeqCst),
        1,
        "exactly one computation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_embedders_share_one_lease() {
    // Two independent runtimes model two processes: the component's lease, not the
    // in-process lock, must keep the computation single.
    let redis = RedisServer::start();
    let a = Arc::new(
        Redwasm::connect(&redis.url())
            .await
            .unwrap()
            .cache()
            .await
            .unwrap(),
    );
    let b = Arc::new(
        Redwasm::connect(&redis.url())
            .await
            .unwrap()
            .cache()
            .await
            .unwrap(),
    );
    let computed = Arc::new(AtomicUsize::new(0));
    let run = |cache: Arc<redwasm::embed::Cache>, computed: Arc<AtomicUsize>| {
        tokio::spawn(async move {
            cache
                .get_or_compute("shared", "k", &SetOptions::ttl_s(60), || async move {
                    computed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::io::Error>(b"v".to_vec())
                })
                .await
                .unwrap()
        })
    };
    let (x, y) = tokio::join!(run(a, computed.clone()), run(b, computed.clone()));
    assert_eq!(x.unwrap(), b"v");
    assert_eq!(y.unwrap(), b"v");
    assert_eq!(computed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compute_errors_propagate_and_nothing_is_cached() {
    let redis = RedisServer::start();
    let cache = Redwasm::connect(&redis.url())
        .await
        .unwrap()
        .cache()
        .await
        .unwrap();
    let result = cache
        .get_or_compute("ns", "fails", &SetOptions::ttl_s(60), || async {
            Err::<Vec<u8>, _>("backend down")
        })
        .await;
    match result {
        Err(EmbedError::Compute(message)) => assert_eq!(message, "backend down"),
        other => panic!("expected a compute error, got {other:?}"),
    }
    assert!(cache.get("ns", "fails").await.unwrap().is_none());
}
