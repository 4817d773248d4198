//! The Redis capability against a real `redis-server`: sandbox, allow-list, blocking
//! commands, reply cap, outage and recovery, AUTH. Calls the host layer the WIT bindings
//! use ([`redwasm::redis::Connection`]) directly, without wasm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redwasm::redis::{
    Connection, RedisCtx, RedisError, RedisParam, RedisPool, RedisPoolConfig, RedisValue,
};
use redwasm_testkit::RedisServer;

fn bin(s: &str) -> RedisParam {
    RedisParam::Binary(s.as_bytes().to_vec())
}

fn val(s: &str) -> RedisValue {
    RedisValue::Binary(s.as_bytes().to_vec())
}

fn ctx(pool: &Arc<RedisPool>, id: &str, url: &str) -> RedisCtx {
    RedisCtx::new(pool.clone(), id, &[url.to_string()], true).expect("ctx")
}

fn open(pool: &Arc<RedisPool>, id: &str, url: &str) -> Connection {
    ctx(pool, id, url).open(url).expect("open")
}

/// A plain redis-rs connection, to look at the server from outside the sandbox.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn raw_get(url: &str, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

fn assert_denied(result: Result<Vec<RedisValue>, RedisError>) {
    match result {
        Err(RedisError::Other(msg)) => assert!(msg.starts_with("denied:"), "{msg}"),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_prefixes_keys_in_the_real_server() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let conn = open(&pool, "cache", &url);

    conn.set("greeting", b"hello".to_vec()).await.unwrap();
    assert_eq!(
        raw_get(&url, "cache:greeting").await,
        Some(b"hello".to_vec())
    );
    assert_eq!(raw_get(&url, "greeting").await, None);
    assert_eq!(conn.get("greeting").await.unwrap(), Some(b"hello".to_vec()));

    assert_eq!(conn.incr("hits").await.unwrap(), 1);
    assert_eq!(raw_get(&url, "cache:hits").await, Some(b"1".to_vec()));
    assert_eq!(
        conn.sadd("tags", vec!["a".into(), "b".into()])
            .await
            .unwrap(),
        2
    );
    let mut members = conn.smembers("tags").await.unwrap();
    members.sort();
    assert_eq!(members, ["a", "b"]);
    assert_eq!(conn.srem("tags", vec!["a".into()]).await.unwrap(), 1);

    let r = conn
        .execute("mset", vec![bin("x"), bin("1"), bin("y"), bin("2")])
        .await
        .unwrap();
    assert_eq!(r, [RedisValue::Status("OK".into())]);
    assert_eq!(raw_get(&url, "cache:y").await, Some(b"2".to_vec()));
    let r = conn
        .execute("MGET", vec![bin("x"), bin("y"), bin("nope")])
        .await
        .unwrap();
    assert_eq!(r, [val("1"), val("2"), RedisValue::Nil]);

    // Nested arrays are flattened, as in Spin.
    let r = conn
        .execute(
            "EVAL",
            vec![
                bin("return {redis.call('GET', KEYS[1]), {ARGV[1], 7}}"),
                RedisParam::Int64(1),
                bin("x"),
                bin("arg"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r, [val("1"), val("arg"), RedisValue::Int64(7)]);

    // SCAN sees only this component's keys, without the prefix.
    let mut raw_conn = raw(&url).await;
    let _: () = redis::cmd("SET")
        .arg("other:secret")
        .arg("1")
        .query_async(&mut raw_conn)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let r = conn
            .execute(
                "SCAN",
                vec![bin(&cursor), bin("COUNT"), RedisParam::Int64(100)],
            )
            .await
            .unwrap();
        let RedisValue::Binary(next) = &r[0] else {
            panic!("cursor: {r:?}")
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        for key in &r[1..] {
            let RedisValue::Binary(k) = key else {
                panic!("{key:?}")
            };
            seen.push(String::from_utf8(k.clone()).unwrap());
        }
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["greeting", "hits", "tags", "x", "y"]);

    // Typed calls report the wrong type as type-error.
    assert_eq!(conn.incr("greeting").await, Err(RedisError::TypeError));
    assert_eq!(
        conn.sadd("greeting", vec!["m".into()]).await,
        Err(RedisError::TypeError)
    );
    // execute keeps the server's message.
    match conn.execute("INCR", vec![bin("greeting")]).await {
        Err(RedisError::Other(msg)) => assert!(msg.contains("not an integer"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_components_keys_are_unreachable() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let a = open(&pool, "alpha", &url);
    let b = open(&pool, "beta", &url);

    a.set("secret", b"alpha-only".to_vec()).await.unwrap();
    assert_eq!(b.get("secret").await.unwrap(), None);
    assert_eq!(b.get("alpha:secret").await.unwrap(), None);
    assert_eq!(b.del(vec!["secret".into()]).await.unwrap(), 0);
    let r = b
        .execute(
            "EVAL",
            vec![
                bin("return redis.call('GET', KEYS[1])"),
                RedisParam::Int64(1),
                bin("secret"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r, [RedisValue::Nil]);
    let r = b
        .execute("SCAN", vec![bin("0"), bin("COUNT"), bin("1000")])
        .await
        .unwrap();
    assert_eq!(r, [val("0")]);
    assert_denied(b.execute("KEYS", vec![bin("*")]).await);
    assert_denied(b.execute("RANDOMKEY", vec![]).await);
    // Renaming into another namespace lands in beta's own namespace instead.
    b.set("mine", b"v".to_vec()).await.unwrap();
    b.execute("RENAME", vec![bin("mine"), bin("alpha:secret")])
        .await
        .unwrap();
    assert_eq!(a.get("secret").await.unwrap(), Some(b"alpha-only".to_vec()));
    assert_eq!(
        raw_get(&url, "beta:alpha:secret").await,
        Some(b"v".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_commands_are_denied() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let conn = open(&pool, "app", &url);
    conn.set("keep", b"1".to_vec()).await.unwrap();

    let before = pool.stats().denied;
    for (cmd, args) in [
        ("FLUSHALL", vec![]),
        ("FLUSHDB", vec![]),
        ("CONFIG", vec![bin("SET"), bin("maxmemory"), bin("1")]),
        ("SELECT", vec![bin("1")]),
        ("SCRIPT", vec![bin("FLUSH")]),
        ("SHUTDOWN", vec![bin("NOSAVE")]),
        ("CLIENT", vec![bin("KILL"), bin("TYPE"), bin("normal")]),
        ("MULTI", vec![]),
        ("SUBSCRIBE", vec![bin("c")]),
        ("DEBUG", vec![bin("SLEEP"), bin("1")]),
        ("NOSUCHCOMMAND", vec![]),
    ] {
        assert_denied(conn.execute(cmd, args).await);
    }
    assert_eq!(pool.stats().denied, before + 11);
    assert_eq!(raw_get(&url, "app:keep").await, Some(b"1".to_vec()));
    // SCRIPT LOAD is fine.
    let r = conn
        .execute("SCRIPT", vec![bin("LOAD"), bin("return 1")])
        .await
        .unwrap();
    assert!(
        matches!(&r[..], [RedisValue::Binary(sha)] if sha.len() == 40),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_outbound_hosts_are_enforced() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let c = ctx(&pool, "app", &url);
    assert_eq!(
        c.open("redis://10.255.0.1:6379").unwrap_err(),
        RedisError::InvalidAddress
    );
    assert_eq!(c.open("not a url").unwrap_err(), RedisError::InvalidAddress);
    let other_port = format!("redis://127.0.0.1:{}", server.port() + 1);
    assert_eq!(c.open(&other_port).unwrap_err(), RedisError::InvalidAddress);

    let nothing = RedisCtx::new(pool.clone(), "app", &[], true).unwrap();
    assert_eq!(nothing.open(&url).unwrap_err(), RedisError::InvalidAddress);

    let wildcard =
        RedisCtx::new(pool.clone(), "app", &["redis://127.0.0.1:*".into()], true).unwrap();
    wildcard
        .open(&url)
        .unwrap()
        .set("k", b"v".to_vec())
        .await
        .unwrap();

    // Bad prefixes are configuration errors.
    assert!(RedisCtx::new(pool.clone(), "{app}", std::slice::from_ref(&url), true).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsandboxed_components_see_raw_keys_but_not_connection_state() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let c = RedisCtx::new(pool.clone(), "legacy", std::slice::from_ref(&url), false).unwrap();
    assert_eq!(c.prefix(), None);
    let conn = c.open(&url).unwrap();
    conn.set("plain", b"1".to_vec()).await.unwrap();
    assert_eq!(raw_get(&url, "plain").await, Some(b"1".to_vec()));
    let r = conn.execute("KEYS", vec![bin("pl*")]).await.unwrap();
    assert_eq!(r, [val("plain")]);
    assert_denied(conn.execute("SELECT", vec![bin("2")]).await);
    assert_denied(conn.execute("MULTI", vec![]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_pop_waits_without_stalling_ordinary_commands() {
    let server = RedisServer::start();
    let url = server.url();
    // A response timeout far below the block time: blocking commands must not be subject
    // to it (they run on dedicated connections).
    let pool = RedisPool::new(RedisPoolConfig {
        response_timeout: Duration::from_millis(300),
        ..RedisPoolConfig::default()
    });
    let conn = open(&pool, "worker", &url);
    assert!(Connection::is_blocking("blpop", &[bin("q"), bin("5")]));

    let popper = {
        let conn = conn.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let r = conn.execute("BLPOP", vec![bin("jobs"), bin("5")]).await;
            (r, start.elapsed())
        })
    };
    // Ordinary commands keep flowing while BLPOP waits.
    server.wait_blocked(1).await;
    assert_eq!(pool.stats().blocking_in_use, 1);
    for i in 0..20 {
        let start = Instant::now();
        conn.set("tick", i.to_string().into_bytes()).await.unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "SET stalled: {:?}",
            start.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pusher = open(&pool, "worker", &url);
    pusher
        .execute("RPUSH", vec![bin("jobs"), bin("job-1")])
        .await
        .unwrap();

    let (r, elapsed) = popper.await.unwrap();
    assert_eq!(
        r.unwrap(),
        [val("jobs"), val("job-1")],
        "key name comes back un-prefixed"
    );
    assert!(elapsed > Duration::from_millis(500), "{elapsed:?}");
    assert_eq!(pool.stats().blocking_in_use, 0);

    // A block longer than the response timeout ends with nil, not a timeout.
    let start = Instant::now();
    let r = conn
        .execute("BRPOP", vec![bin("empty"), bin("0.8")])
        .await
        .unwrap();
    assert_eq!(r, [RedisValue::Nil]);
    assert!(start.elapsed() >= Duration::from_millis(700));

    // XREAD BLOCK: stream names come back un-prefixed.
    let reader = {
        let conn = conn.clone();
        tokio::spawn(async move {
            conn.execute(
                "XREAD",
                vec![
                    bin("BLOCK"),
                    bin("2000"),
                    bin("STREAMS"),
                    bin("events"),
                    bin("$"),
                ],
            )
            .await
        })
    };
    // `$` means "after what exists when XREAD runs": add only once it is blocked.
    server.wait_blocked(1).await;
    conn.execute("XADD", vec![bin("events"), bin("*"), bin("f"), bin("v")])
        .await
        .unwrap();
    let r = reader.await.unwrap().unwrap();
    assert_eq!(r[0], val("events"), "{r:?}");
    assert_eq!(r[2..], [val("f"), val("v")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_connections_are_bounded() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig {
        max_blocking_connections: 1,
        blocking_acquire_timeout: Duration::from_millis(100),
        ..RedisPoolConfig::default()
    });
    let conn = open(&pool, "w", &url);
    let first = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.execute("BLPOP", vec![bin("q"), bin("1")]).await })
    };
    server.wait_blocked(1).await;
    let start = Instant::now();
    let second = conn.execute("BLPOP", vec![bin("q"), bin("1")]).await;
    assert_eq!(second, Err(RedisError::TooManyConnections));
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(first.await.unwrap().unwrap(), [RedisValue::Nil]);
    // The slot is free again.
    conn.execute("BLPOP", vec![bin("q"), bin("0.1")])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_replies_are_refused() {
    let server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig {
        max_reply_bytes: 1024,
        ..RedisPoolConfig::default()
    });
    let conn = open(&pool, "big", &url);
    conn.set("large", vec![b'x'; 4096]).await.unwrap();
    conn.set("small", vec![b'x'; 100]).await.unwrap();
    match conn.get("large").await {
        Err(RedisError::Other(msg)) => assert!(msg.contains("reply too large"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match conn.execute("MGET", vec![bin("small"); 20]).await {
        Err(RedisError::Other(msg)) => assert!(msg.contains("reply too large"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(conn.get("small").await.unwrap().unwrap().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_and_recovers() {
    let mut server = RedisServer::start();
    let url = server.url();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let c = ctx(&pool, "app", &url);
    let conn = c.open(&url).unwrap();
    conn.set("k", b"1".to_vec()).await.unwrap();
    assert!(pool.stats().connected);

    server.stop();
    // The first call notices the outage.
    let start = Instant::now();
    assert!(conn.get("k").await.is_err());
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    // Then every call fails at once, far under the 1 s connect timeout.
    for _ in 0..20 {
        let start = Instant::now();
        match conn.get("k").await {
            Err(RedisError::Other(msg)) => assert!(msg.starts_with("redis unavailable"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }
    assert!(c.open(&url).is_err(), "open fails fast too");
    let h = pool.health(&url).await;
    assert!(!h.connected);
    assert!(!pool.stats().connected);
    assert!(pool.stats().unavailable >= 20);
    let blocking = conn.execute("BLPOP", vec![bin("q"), bin("1")]).await;
    assert!(
        matches!(blocking, Err(RedisError::Other(_))),
        "{blocking:?}"
    );

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match conn.set("k", b"2".to_vec()).await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "did not recover: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(conn.get("k").await.unwrap(), Some(b"2".to_vec()));
    // `health` looks at the address through the host's own endpoint, which its own probe
    // brings back (within one probe interval).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pool.health(&url).await.connected {
        assert!(Instant::now() < deadline, "health never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pool.stats().connected);
    // Blocking commands work again too.
    assert_eq!(
        conn.execute("BLPOP", vec![bin("q"), bin("0.1")])
            .await
            .unwrap(),
        [RedisValue::Nil]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_in_the_url_authenticates() {
    let server = RedisServer::start_with_args(&["--requirepass", "s3cret"]);
    let port = server.port();
    let good = format!("redis://:s3cret@127.0.0.1:{port}");
    let bad = format!("redis://:wrong@127.0.0.1:{port}");
    let pool = RedisPool::new(RedisPoolConfig::default());
    // The allow-list entry carries no password: it is about where, not how.
    let c = RedisCtx::new(
        pool.clone(),
        "app",
        &[format!("redis://127.0.0.1:{port}")],
        true,
    )
    .unwrap();
    let conn = c.open(&good).unwrap();
    conn.set("k", b"v".to_vec()).await.unwrap();
    assert_eq!(conn.get("k").await.unwrap(), Some(b"v".to_vec()));

    let start = Instant::now();
    let wrong = c.open(&bad).unwrap();
    match wrong.get("k").await {
        Err(RedisError::Other(msg)) => assert!(!msg.contains("wrong"), "password leaked: {msg}"),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_server_info() {
    let server = RedisServer::start();
    let pool = RedisPool::new(RedisPoolConfig::default());
    let h = pool.health(&server.url()).await;
    assert!(h.connected, "{h:?}");
    assert!(h.latency_ms >= 0.0 && h.latency_ms < 1000.0);
    assert!(h.version.as_deref().is_some_and(|v| !v.is_empty()), "{h:?}");
    assert!(h.used_memory.unwrap_or(0) > 0);
    assert!(h.connected_clients.unwrap_or(0) >= 1);
    assert!(h.uptime_s.is_some());
    let metrics = pool.render_metrics();
    assert!(metrics.contains("redwasm_redis_connected 1"), "{metrics}");
}

/// The process-wide endpoint cap: when every slot is held by a live connection, a new address
/// is refused (`too-many-connections`) without disturbing the others; an endpoint nobody
/// holds any more is closed to make room once it has been idle for `endpoint_idle_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_capped_process_wide_and_idle_ones_make_room() {
    let server = RedisServer::start();
    let pool = RedisPool::new(RedisPoolConfig {
        max_endpoints: 3,
        endpoint_idle_timeout: Duration::ZERO,
        ..RedisPoolConfig::default()
    });
    let allow = [
        format!("redis://127.0.0.1:{}", server.port()),
        "redis://127.0.0.1:*".to_string(),
    ];
    let component = |id: &str| RedisCtx::new(pool.clone(), id, &allow, true).unwrap();
    // Three components, three endpoints, all held.
    let held: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|id| component(id).open(&server.url()).unwrap())
        .collect();
    for conn in &held {
        conn.set("k", b"v".to_vec()).await.unwrap();
    }
    // A fourth is refused, and the others keep working.
    assert_eq!(
        component("d").open(&server.url()).err(),
        Some(RedisError::TooManyConnections)
    );
    assert_eq!(held[0].get("k").await.unwrap(), Some(b"v".to_vec()));
    // Once one is no longer held, it makes room.
    let mut held = held;
    drop(held.pop());
    let d = component("d").open(&server.url()).unwrap();
    d.set("k", b"w".to_vec()).await.unwrap();
    assert_eq!(held[1].get("k").await.unwrap(), Some(b"v".to_vec()));
    assert!(pool.stats().endpoints <= 3, "{:?}", pool.stats());
}
