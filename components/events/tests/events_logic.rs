//! The events logic against a real redis-server: publishing, a new client's live start,
//! exact replay after `Last-Event-ID`, `reset` when events were trimmed away or the id is
//! unknown, other components' channels read as they are and never written, and bad input
//! that writes nothing.

use redis::Commands;
use redwasm_events::channels::Channel;
use redwasm_events::{Events, EventsConfig, EventsError};
use redwasm_guest::native::RedisRs;
use redwasm_testkit::RedisServer;
use serde_json::json;

fn events(server: &RedisServer, config: EventsConfig) -> Events<RedisRs> {
    Events::new(RedisRs::new(&server.url()), config)
}

fn xadd(conn: &mut redis::Connection, key: &str, fields: &[(&str, &str)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("*");
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    cmd.query(conn).unwrap()
}

fn xlen(conn: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("XLEN").arg(key).query(conn).unwrap()
}

/// The ids of `XRANGE`/`XREVRANGE key a b COUNT n`.
fn ids(
    conn: &mut redis::Connection,
    command: &str,
    key: &str,
    range: [&str; 2],
    n: usize,
) -> Vec<String> {
    let entries: Vec<(String, Vec<String>)> = redis::cmd(command)
        .arg(key)
        .arg(range[0])
        .arg(range[1])
        .arg("COUNT")
        .arg(n)
        .query(conn)
        .unwrap();
    entries.into_iter().map(|(id, _)| id).collect()
}

fn inspect(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

#[test]
fn a_resuming_client_gets_every_later_event_exactly_once() {
    let server = RedisServer::start();
    let mut e = events(&server, EventsConfig::default());
    let fresh = e.start("chat", None).unwrap();
    assert!(
        fresh.events.is_empty(),
        "a new client gets only later events"
    );
    assert_eq!(fresh.last_id, "0-0");
    assert_eq!(fresh.stream, "e{chat}:s");

    let ids: Vec<String> = (0..5)
        .map(|i| e.publish("chat", None, &json!({ "n": i })).unwrap())
        .collect();
    let start = e.start("chat", Some(&ids[1])).unwrap();
    let replayed: Vec<&str> = start.events.iter().map(|ev| ev.id.as_str()).collect();
    assert_eq!(
        replayed,
        ids[2..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(start.events[0].event, "message");
    assert_eq!(start.events[0].data, r#"{"n":2}"#);
    assert_eq!(start.last_id, ids[4]);
    assert!(!start.finished);

    // Caught up: nothing replayed, the position stays.
    let caught_up = e.start("chat", Some(&ids[4])).unwrap();
    assert!(caught_up.events.is_empty());
    assert_eq!(caught_up.last_id, ids[4]);

    // A new client starts after the newest event.
    assert_eq!(e.start("chat", None).unwrap().last_id, ids[4]);

    // Waiting for more (the self-streaming path): the next one, then nothing.
    let next_id = e.publish("chat", Some("typing"), &json!("ada")).unwrap();
    let (more, at) = e.events_after("chat", "e{chat}:s", &ids[4], 10).unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(
        (more[0].event.as_str(), more[0].data.as_str()),
        ("typing", "\"ada\"")
    );
    assert_eq!(at, next_id);
    let (none, same) = e.events_after("chat", "e{chat}:s", &at, 10).unwrap();
    assert!(none.is_empty());
    assert_eq!(same, at);
}

#[test]
fn replays_are_bounded_and_the_rest_follows_in_order() {
    let server = RedisServer::start();
    let mut e = events(
        &server,
        EventsConfig {
            replay_max: 3,
            ..EventsConfig::default()
        },
    );
    let ids: Vec<String> = (0..7)
        .map(|i| e.publish("c", None, &json!(i)).unwrap())
        .collect();
    let first = e.start("c", Some(&ids[0])).unwrap();
    assert_eq!(first.events.len(), 3);
    assert_eq!(first.last_id, ids[3]);
    let second = e.start("c", Some(&first.last_id)).unwrap();
    let got: Vec<&str> = second.events.iter().map(|ev| ev.id.as_str()).collect();
    assert_eq!(got, [ids[4].as_str(), ids[5].as_str(), ids[6].as_str()]);
}

#[test]
fn an_id_trimmed_away_or_unknown_gets_reset() {
    let server = RedisServer::start();
    let mut e = events(&server, EventsConfig::default());
    let first = e.publish("t", None, &json!(1)).unwrap();
    // `MAXLEN ~` trims whole nodes; an exact trim makes the test deterministic.
    for i in 0..300 {
        e.publish("t", None, &json!(i)).unwrap();
    }
    let _: () = redis::cmd("XTRIM")
        .arg("e{t}:s")
        .arg("MAXLEN")
        .arg(10)
        .query(&mut inspect(&server))
        .unwrap();
    let start = e.start("t", Some(&first)).unwrap();
    assert_eq!(start.events.len(), 1);
    assert_eq!(start.events[0].event, "reset");
    let data: serde_json::Value = serde_json::from_str(&start.events[0].data).unwrap();
    assert_eq!(data["channel"], "t");
    assert_eq!(data["last_event_id"], first.as_str());
    let newest = ids(&mut inspect(&server), "XREVRANGE", "e{t}:s", ["+", "-"], 1);
    assert_eq!(
        start.last_id, newest[0],
        "a reset resumes from the newest event"
    );

    // An id from the future (another Redis, a recreated stream) is unknown: reset too.
    let future = e.start("t", Some("99999999999999-0")).unwrap();
    assert_eq!(future.events[0].event, "reset");
    // So is any id on a channel that does not exist.
    let gone = e.start("never-written", Some("1-0")).unwrap();
    assert_eq!(gone.events[0].event, "reset");
    // An id still inside what is kept replays exactly.
    let kept = ids(&mut inspect(&server), "XRANGE", "e{t}:s", ["-", "+"], 2);
    let from = &kept[0];
    let exact = e.start("t", Some(from)).unwrap();
    assert_eq!(exact.events.len(), 9);
    assert!(exact.events.iter().all(|ev| ev.event == "message"));
}

#[test]
fn other_components_channels_are_read_as_written_and_never_written() {
    let server = RedisServer::start();
    let mut conn = inspect(&server);
    // What the queue writes (fields without `data`), and a progress entry's events.
    let q1 = xadd(
        &mut conn,
        "q{mail}:ev",
        &[("event", "waiting"), ("id", "j1"), ("ms", "5")],
    );
    xadd(
        &mut conn,
        "q{mail}:ev",
        &[("event", "completed"), ("id", "j1"), ("ms", "9")],
    );
    let p1 = xadd(
        &mut conn,
        "p{imp}:s",
        &[("event", "progress"), ("data", r#"{"percent":50}"#)],
    );
    xadd(
        &mut conn,
        "p{imp}:s",
        &[("event", "completed"), ("data", r#"{"percent":100}"#)],
    );

    let mut e = events(&server, EventsConfig::default());
    let jobs = e.start("jobs.mail", Some(&q1)).unwrap();
    assert_eq!(jobs.stream, "q{mail}:ev");
    assert_eq!(jobs.events.len(), 1);
    assert_eq!(jobs.events[0].event, "completed");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&jobs.events[0].data).unwrap(),
        json!({"id": "j1", "ms": 9})
    );
    assert!(!jobs.finished, "job channels never end by themselves");

    let progress = e.start("progress.imp", Some(&p1)).unwrap();
    assert_eq!(progress.events[0].event, "completed");
    assert!(
        progress.finished,
        "a progress channel ends after its terminal event"
    );
    assert_eq!(progress.ends, ["completed", "failed"]);

    let before = xlen(&mut conn, "q{mail}:ev");
    for channel in ["jobs.mail", "progress.imp", "cache.users"] {
        assert!(matches!(
            e.publish(channel, None, &json!({})),
            Err(EventsError::ReadOnly(_))
        ));
    }
    let after = xlen(&mut conn, "q{mail}:ev");
    assert_eq!(before, after);
    let cache_exists: bool = conn.exists(Channel::parse("cache.users").stream()).unwrap();
    assert!(!cache_exists);
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let server = RedisServer::start();
    let mut e = events(
        &server,
        EventsConfig {
            max_event_bytes: 16,
            ..EventsConfig::default()
        },
    );
    let field = |r: Result<String, EventsError>| match r {
        Err(EventsError::Invalid { field, .. }) => field,
        other => panic!("expected invalid input, got {other:?}"),
    };
    assert_eq!(field(e.publish("", None, &json!(1))), "channel");
    assert_eq!(field(e.publish("a\nb", None, &json!(1))), "channel");
    assert_eq!(
        field(e.publish(&"x".repeat(257), None, &json!(1))),
        "channel"
    );
    assert_eq!(field(e.publish("c", Some("reset"), &json!(1))), "event");
    assert_eq!(field(e.publish("c", Some("has space"), &json!(1))), "event");
    assert_eq!(field(e.publish("c", Some(""), &json!(1))), "event");
    assert!(matches!(
        e.publish("c", None, &json!("a string well over sixteen bytes")),
        Err(EventsError::TooLarge(16))
    ));
    for bad in ["jobs.", "jobs.a{b", "progress.", "progress.a b", "cache."] {
        assert!(
            matches!(e.start(bad, None), Err(EventsError::Invalid { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        e.start("c", Some("not-an-id")),
        Err(EventsError::Invalid { field, .. }) if field == "Last-Event-ID"
    ));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut inspect(&server))
        .unwrap();
    assert!(keys.is_empty(), "nothing written: {keys:?}");
}

#[test]
fn own_channels_are_capped_and_expire() {
    let server = RedisServer::start();
    let mut e = events(
        &server,
        EventsConfig {
            stream_maxlen: 100,
            retention_s: 60,
            ..EventsConfig::default()
        },
    );
    for i in 0..2000 {
        e.publish("busy", None, &json!(i)).unwrap();
    }
    let mut conn = inspect(&server);
    let len = xlen(&mut conn, "e{busy}:s");
    assert!(len < 400, "trimmed to about 100, kept {len}");
    let ttl: i64 = conn.pttl("e{busy}:s").unwrap();
    assert!((1..=60_000).contains(&ttl), "expires with retention: {ttl}");
}
