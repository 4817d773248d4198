//! The sessions logic against a real redis-server with a manual clock: ids only as hashes,
//! sliding expiry, versions, the per-user index as sessions come and go, revoke-all.

use redis::Commands;
use redwasm_guest::native::RedisRs;
use redwasm_sessions::{ManualClock, SessionError, Sessions, SessionsConfig};
use redwasm_testkit::RedisServer;
use serde_json::json;

const T0_MS: u64 = 1_735_689_600_000;

struct Fixture {
    server: RedisServer,
    clock: ManualClock,
}

impl Fixture {
    fn new() -> Self {
        Self {
            server: RedisServer::start(),
            clock: ManualClock::new(T0_MS),
        }
    }

    fn sessions(&self) -> Sessions<RedisRs, ManualClock> {
        Sessions::new(
            RedisRs::new(&self.server.url()),
            self.clock.clone(),
            SessionsConfig::default(),
        )
    }

    fn inspect(&self) -> redis::Connection {
        redis::Client::open(self.server.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

#[test]
fn ids_are_random_and_only_their_hash_reaches_redis() {
    let f = Fixture::new();
    let mut s = f.sessions();
    let a = s.create("ada", &json!({"cart": [1]}), None).unwrap();
    let b = s.create("ada", &json!({}), None).unwrap();
    assert_eq!(a.session_id.len(), 32);
    assert_ne!(a.session_id, b.session_id);
    let keys: Vec<String> = f.inspect().keys("*").unwrap();
    assert!(
        keys.iter()
            .all(|k| !k.contains(&a.session_id) && !k.contains(&b.session_id)),
        "{keys:?}"
    );
    // Nor in any value.
    let dump: String = redis::cmd("HGETALL")
        .arg(format!(
            "s{{{}}}",
            redwasm_sessions::keys::session_hash(&a.session_id)
        ))
        .query::<Vec<String>>(&mut f.inspect())
        .unwrap()
        .join(" ");
    assert!(!dump.contains(&a.session_id));
    let session = s.get(&a.session_id, false).unwrap();
    assert_eq!(session.user_id, "ada");
    assert_eq!(session.data, json!({"cart": [1]}));
    assert_eq!(session.version, 1);
}

#[test]
fn reads_slide_the_expiry_unless_told_not_to() {
    let f = Fixture::new();
    let mut s = f.sessions();
    let created = s.create("ada", &json!({}), Some(60)).unwrap();
    assert_eq!(created.expires_ms, T0_MS + 60_000);
    f.clock.advance_ms(30_000);
    assert_eq!(
        s.get(&created.session_id, false).unwrap().expires_ms,
        T0_MS + 60_000
    );
    let touched = s.get(&created.session_id, true).unwrap();
    assert_eq!(touched.expires_ms, T0_MS + 90_000);
    let key = format!(
        "s{{{}}}",
        redwasm_sessions::keys::session_hash(&created.session_id)
    );
    // Redis's own expiry (on Redis's clock) slides with a touch and only then.
    let short = s.create("ada", &json!({}), Some(2)).unwrap();
    let short_key = format!(
        "s{{{}}}",
        redwasm_sessions::keys::session_hash(&short.session_id)
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    s.get(&short.session_id, false).unwrap();
    let untouched: i64 = f.inspect().pttl(&short_key).unwrap();
    assert!(untouched <= 1_650, "{untouched}");
    s.get(&short.session_id, true).unwrap();
    let touched: i64 = f.inspect().pttl(&short_key).unwrap();
    assert!(touched > 1_900, "{touched}");
    let ttl: i64 = f.inspect().pttl(&key).unwrap();
    assert!(ttl > 0, "{ttl}");
}

#[test]
fn versions_guard_concurrent_writers() {
    let f = Fixture::new();
    let mut one = f.sessions();
    let mut two = f.sessions();
    let sid = one
        .create("ada", &json!({"n": 0}), None)
        .unwrap()
        .session_id;
    // Both read version 1; the first write wins, the second gets 412 and changes nothing.
    let first = one.update(&sid, Some(1), &json!({"n": 1})).unwrap();
    assert_eq!(first.version, 2);
    assert_eq!(
        two.update(&sid, Some(1), &json!({"n": 2})),
        Err(SessionError::VersionMismatch(2))
    );
    assert_eq!(one.get(&sid, false).unwrap().data, json!({"n": 1}));
    // Unconditional writes always apply.
    assert_eq!(two.update(&sid, None, &json!({"n": 3})).unwrap().version, 3);
}

#[test]
fn the_user_index_follows_sessions_as_they_come_and_go() {
    let f = Fixture::new();
    let mut s = f.sessions();
    let short = s.create("ada", &json!({}), Some(10)).unwrap();
    let long = s.create("ada", &json!({}), Some(100)).unwrap();
    let other = s.create("bob", &json!({}), Some(100)).unwrap();
    assert_eq!(s.list("ada").unwrap().len(), 2);
    // The short one expires (Redis expires the key; the clock moves past it).
    f.clock.advance_ms(20_000);
    let _: () = f
        .inspect()
        .del(format!(
            "s{{{}}}",
            redwasm_sessions::keys::session_hash(&short.session_id)
        ))
        .unwrap();
    let listed = s.list("ada").unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let members: u64 = f.inspect().zcard("u{ada}").unwrap();
    assert_eq!(members, 1, "no dead ids left behind");
    // Deleting one session removes it from the index too.
    assert!(s.delete(&long.session_id).unwrap());
    assert!(s.list("ada").unwrap().is_empty());
    assert_eq!(s.get(&long.session_id, true), Err(SessionError::NotFound));
    // The index expires with its last session.
    let ttl: i64 = f.inspect().pttl("u{bob}").unwrap();
    assert!(ttl > 0 && ttl <= 100_000, "{ttl}");
    assert!(s.get(&other.session_id, false).is_ok());
}

#[test]
fn revoke_all_ends_every_session_of_that_user_and_nobody_elses() {
    let f = Fixture::new();
    let mut s = f.sessions();
    let ada: Vec<String> = (0..3)
        .map(|_| s.create("ada", &json!({}), None).unwrap().session_id)
        .collect();
    let bob = s.create("bob", &json!({}), None).unwrap().session_id;
    assert_eq!(s.revoke_all("ada").unwrap(), 3);
    for sid in &ada {
        assert_eq!(s.get(sid, false), Err(SessionError::NotFound));
    }
    assert!(s.get(&bob, false).is_ok());
    assert!(s.list("ada").unwrap().is_empty());
    assert_eq!(s.revoke_all("ada").unwrap(), 0);
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let f = Fixture::new();
    let mut s = f.sessions();
    let field = |r: Result<_, SessionError>| match r {
        Err(SessionError::Invalid { field, .. }) => field,
        Err(SessionError::TooLarge { field, .. }) => field,
        other => panic!("expected bad input, got {other:?}"),
    };
    assert_eq!(field(s.create("a b", &json!({}), None)), "user_id");
    assert_eq!(field(s.create("ada", &json!([1]), None)), "data");
    assert_eq!(field(s.create("ada", &json!({}), Some(0))), "ttl_s");
    let big = json!({ "blob": "x".repeat(70 * 1024) });
    assert_eq!(field(s.create("ada", &big, None)), "data");
    assert!(matches!(
        s.get("not-a-session", true),
        Err(SessionError::Invalid { field, .. }) if field == "session_id"
    ));
    let keys: Vec<String> = f.inspect().keys("*").unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(
        s.get("00112233445566778899aabbccddeeff", true),
        Err(SessionError::NotFound)
    );
}
