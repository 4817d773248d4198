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

/// The `hits` counter as Redis holds it (the component id `cache` is the key prefix).
fn stored_hits(redis: &RedisServer, ns: &str) -> i64 {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let hits: Option<i64> = redis::cmd("HGET")
        .arg(format!("cache:c{{{ns}}}:s"))
        .arg("hits")
        .query(&mut conn)
        .unwrap();
    hits.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_hits_reach_redis_in_the_background_and_stats_includes_them_at_once() {
    let redis = RedisServer::start();
    let redwasm = Redwasm::connect(&redis.url()).await.unwrap();
    let cache = Arc::new(redwasm.cache().await.unwrap());
    cache
        .set("ns", "k", b"v", &SetOptions::ttl_s(60))
        .await
        .unwrap();
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("ns", "k").await.unwrap().is_some() })
        })
        .collect();
    for reader in readers {
        assert!(reader.await.unwrap());
    }
    // Written by the background flusher, without any call on the handle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stored_hits(&redis, "ns") < 50 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_hits(&redis, "ns"), 50);

    for _ in 0..5 {
        assert!(cache.get("ns", "k").await.unwrap().is_some());
    }
    assert!(cache.get("ns", "absent").await.unwrap().is_none());
    let stats = cache.stats("ns").await.unwrap();
    assert_eq!((stats.hits, stats.misses, stats.stale_hits), (55, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hit_counts_wait_out_a_redis_outage_and_a_dropped_handle_writes_its_last_batch() {
    let mut redis = RedisServer::start();
    let redwasm = Redwasm::connect(&redis.url())
        .await
        .unwrap()
        // Only explicit flushes during this test.
        .with_hit_flush_interval(Duration::from_secs(3600));
    let cache = redwasm.cache().await.unwrap();
    cache
        .set("ns", "k", b"v", &SetOptions::ttl_s(60))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(cache.get("ns", "k").await.unwrap().is_some());
    }
    assert_eq!(stored_hits(&redis, "ns"), 0, "batched, not written yet");

    redis.stop();
    assert!(cache.flush_stats().await.is_err());
    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let flushed = loop {
        match cache.flush_stats().await {
            Ok(()) => break true,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => break false,
        }
    };
    assert!(flushed, "the flush succeeds once Redis is back");
    assert_eq!(stored_hits(&redis, "ns"), 3, "no count lost to the outage");

    cache
        .set("ns", "k", b"v", &SetOptions::ttl_s(60))
        .await
        .unwrap();
    assert!(cache.get("ns", "k").await.unwrap().is_some());
    drop(cache);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stored_hits(&redis, "ns") < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_hits(&redis, "ns"), 4);
}
