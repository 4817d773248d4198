//! The key-value capability against a real `redis-server`, through the host layer the WIT
//! bindings call ([`redwasm::kv::KvCtx`]): each (component, store) is its own namespace,
//! `get-keys` lists one store only, undeclared stores are denied, limits are guest errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use redwasm::kv::{KvCtx, KvError, MAX_KEY_BYTES};
use redwasm::redis::{RedisCtx, RedisPool, RedisPoolConfig};
use redwasm_testkit::RedisServer;

fn kv(pool: &Arc<RedisPool>, component: &str, labels: &[&str]) -> KvCtx {
    let redis = RedisCtx::new(pool.clone(), component, &[], true).expect("redis ctx");
    KvCtx::new(redis, labels.iter().map(|l| l.to_string()), BTreeMap::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_are_separate_per_component_and_label() {
    let server = RedisServer::start();
    let pool = RedisPool::new(RedisPoolConfig::default());
    pool.set_host_redis(&server.url()).unwrap();
    let a = kv(&pool, "alpha", &["default", "other"]);
    let b = kv(&pool, "beta", &["default"]);

    let a_default = a.open("default").unwrap();
    let a_other = a.open("other").unwrap();
    let b_default = b.open("default").unwrap();
    a_default.set("k", b"a".to_vec()).await.unwrap();
    a_other.set("k", b"o".to_vec()).await.unwrap();
    a_other.set("k2", b"o2".to_vec()).await.unwrap();
    assert_eq!(b_default.get("k").await.unwrap(), None);
    assert!(!b_default.exists("k").await.unwrap());
    assert_eq!(a_default.get("k").await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(a_default.get_keys().await.unwrap(), vec!["k".to_string()]);
    let mut other_keys = a_other.get_keys().await.unwrap();
    other_keys.sort();
    assert_eq!(other_keys, vec!["k".to_string(), "k2".to_string()]);
    assert!(b_default.get_keys().await.unwrap().is_empty());

    // In Redis: inside each component's own namespace.
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, vec!["alpha:~kv:default", "alpha:~kv:other"]);

    a_default.delete("k").await.unwrap();
    a_default.delete("k").await.unwrap();
    assert_eq!(a_default.get("k").await.unwrap(), None);
    assert!(a_default.get_keys().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_stores_and_oversized_input_are_guest_errors() {
    let server = RedisServer::start();
    let pool = RedisPool::new(RedisPoolConfig::default());
    pool.set_host_redis(&server.url()).unwrap();
    let ctx = kv(&pool, "alpha", &["default"]);
    assert_eq!(ctx.open("forbidden").unwrap_err(), KvError::AccessDenied);
    assert_eq!(
        kv(&pool, "beta", &[]).open("default").unwrap_err(),
        KvError::AccessDenied
    );

    let store = ctx.open("default").unwrap();
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(
        store.set(&long_key, b"v".to_vec()).await,
        Err(KvError::Other(_))
    ));
    assert!(matches!(store.get(&long_key).await, Err(KvError::Other(_))));
    // Over the component's write cap (8 MiB by default): refused before Redis sees it.
    let huge = vec![0u8; 9 * 1024 * 1024];
    match store.set("big", huge).await {
        Err(KvError::Other(msg)) => assert!(msg.contains("denied"), "{msg}"),
        other => panic!("expected a write-cap error, got {other:?}"),
    }
    assert!(!store.exists("big").await.unwrap());
    // The store still works.
    store.set("small", b"ok".to_vec()).await.unwrap();
    assert_eq!(store.get("small").await.unwrap(), Some(b"ok".to_vec()));
}
