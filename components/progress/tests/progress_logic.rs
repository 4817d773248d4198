//! The progress logic against a real redis-server, with a manual clock (no sleeps): entries,
//! steps, ETA, finishing, expiry, the events stream, and bad input that writes nothing.

use redis::Commands;
use redwasm_guest::native::RedisRs;
use redwasm_progress::{
    ManualClock, NewEntry, Outcome, Progress, ProgressConfig, ProgressError, Step,
};
use redwasm_testkit::RedisServer;
use serde_json::json;

/// A fixed start time (2025-01-01T00:00:00Z).
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

    fn progress(&self) -> Progress<RedisRs, ManualClock> {
        Progress::new(
            RedisRs::new(&self.server.url()),
            self.clock.clone(),
            ProgressConfig::default(),
        )
    }

    fn inspect(&self) -> redis::Connection {
        redis::Client::open(self.server.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

fn new_entry(id: &str, total: u64) -> NewEntry {
    NewEntry {
        id: Some(id.to_string()),
        total_steps: total,
        ..NewEntry::default()
    }
}

#[test]
fn steps_percent_and_eta_follow_the_observed_rate() {
    let f = Fixture::new();
    let mut p = f.progress();
    let started = p
        .start(&NewEntry {
            correlation_id: Some("corr-1".into()),
            message: Some("queued".into()),
            ..new_entry("job-1", 4)
        })
        .unwrap();
    assert_eq!(
        started.entry,
        json!({
            "id": "job-1", "correlation_id": "corr-1", "status": "running",
            "total_steps": 4, "current_step": 0, "percent": 0, "message": "queued",
            "started_ms": T0_MS, "updated_ms": T0_MS, "estimated_completion_ms": null,
        })
    );
    // One step per 1000 ms: three steps to go → 3000 ms more.
    f.clock.advance_ms(1000);
    let one = p
        .update(
            "job-1",
            &Step {
                step: Some(1),
                ..Step::default()
            },
        )
        .unwrap();
    assert_eq!(one.entry["percent"], json!(25));
    assert_eq!(one.entry["message"], json!("queued"), "kept when not given");
    assert_eq!(
        one.entry["estimated_completion_ms"],
        json!(T0_MS + 1000 + 3000)
    );
    f.clock.advance_ms(3000);
    let three = p
        .update(
            "job-1",
            &Step {
                step: Some(3),
                message: Some("almost".into()),
                percent: Some(80.5),
            },
        )
        .unwrap();
    assert_eq!(three.entry["percent"], json!(80.5));
    assert_eq!(three.entry["message"], json!("almost"));
    // 4000 ms for 3 steps → 1333 ms for the last one.
    assert_eq!(
        three.entry["estimated_completion_ms"],
        json!(T0_MS + 4000 + 1333)
    );
    assert_eq!(p.get("job-1").unwrap().unwrap(), three.entry);
}

#[test]
fn finishing_is_terminal_and_every_change_is_one_event() {
    let f = Fixture::new();
    let mut p = f.progress();
    let started = p.start(&new_entry("job-2", 10)).unwrap();
    let step = p
        .update(
            "job-2",
            &Step {
                step: Some(5),
                ..Step::default()
            },
        )
        .unwrap();
    let done = p.finish("job-2", Outcome::Completed, Some("done")).unwrap();
    assert_eq!(done.entry["status"], json!("completed"));
    assert_eq!(done.entry["current_step"], json!(10));
    assert_eq!(done.entry["percent"], json!(100));
    assert_eq!(done.entry["estimated_completion_ms"], json!(null));
    // Finished: no more changes, either way.
    let again = p.update(
        "job-2",
        &Step {
            step: Some(6),
            ..Step::default()
        },
    );
    assert!(
        matches!(again, Err(ProgressError::Conflict(_))),
        "{again:?}"
    );
    assert!(matches!(
        p.finish("job-2", Outcome::Failed, None),
        Err(ProgressError::Conflict(_))
    ));

    // The stream holds exactly the three changes, in order, each with its id.
    let mut inspect = f.inspect();
    let events: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("p{job-2}:s")
        .arg("-")
        .arg("+")
        .query(&mut inspect)
        .unwrap();
    let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [&started.event_id, &step.event_id, &done.event_id]);
    let kinds: Vec<&str> = events
        .iter()
        .map(|(_, fields)| fields[0].1.as_str())
        .collect();
    assert_eq!(kinds, ["progress", "progress", "completed"]);
    let last: serde_json::Value = serde_json::from_str(&events[2].1[1].1).unwrap();
    assert_eq!(last, done.entry);
}

#[test]
fn entries_expire_after_their_last_change_and_delete_cleans_up() {
    let f = Fixture::new();
    let mut p = f.progress();
    p.start(&NewEntry {
        ttl_s: Some(60),
        ..new_entry("job-3", 2)
    })
    .unwrap();
    let mut inspect = f.inspect();
    let ttl: i64 = inspect.pttl("p{job-3}:e").unwrap();
    assert!((59_000..=60_000).contains(&ttl), "{ttl}");
    let stream_ttl: i64 = inspect.pttl("p{job-3}:s").unwrap();
    assert!((59_000..=60_000).contains(&stream_ttl), "{stream_ttl}");
    // Expired (both keys carry the same deadline; shortened here so Redis expires them now):
    // unknown everywhere.
    let _: () = inspect.pexpire("p{job-3}:e", 1).unwrap();
    let _: () = inspect.pexpire("p{job-3}:s", 1).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(p.get("job-3").unwrap(), None);
    assert_eq!(
        p.update(
            "job-3",
            &Step {
                step: Some(1),
                ..Step::default()
            }
        ),
        Err(ProgressError::NotFound)
    );
    p.start(&new_entry("job-4", 2)).unwrap();
    assert!(p.delete("job-4").unwrap());
    assert!(!p.delete("job-4").unwrap());
    let left: Vec<String> = inspect.keys("*").unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let f = Fixture::new();
    let mut p = f.progress();
    let invalid_field = |r: Result<_, ProgressError>| match r {
        Err(ProgressError::Invalid { field, .. }) => field,
        other => panic!("expected invalid input, got {other:?}"),
    };
    assert_eq!(invalid_field(p.start(&new_entry("a", 0))), "total_steps");
    assert_eq!(invalid_field(p.start(&new_entry("a{b}", 3))), "id");
    assert_eq!(
        invalid_field(p.start(&NewEntry {
            message: Some("x".repeat(1025)),
            ..new_entry("a", 3)
        })),
        "message"
    );
    assert_eq!(
        invalid_field(p.start(&NewEntry {
            ttl_s: Some(0),
            ..new_entry("a", 3)
        })),
        "ttl_s"
    );
    let keys: Vec<String> = f.inspect().keys("*").unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    p.start(&new_entry("a", 3)).unwrap();
    assert!(matches!(
        p.start(&new_entry("a", 3)),
        Err(ProgressError::Conflict(_))
    ));
    let before = p.get("a").unwrap();
    assert_eq!(
        invalid_field(p.update(
            "a",
            &Step {
                step: Some(4),
                ..Step::default()
            }
        )),
        "step"
    );
    assert_eq!(
        invalid_field(p.update(
            "a",
            &Step {
                percent: Some(101.0),
                ..Step::default()
            }
        )),
        "percent"
    );
    assert_eq!(invalid_field(p.update("a", &Step::default())), "step");
    assert_eq!(p.get("a").unwrap(), before, "nothing changed");
    let events: u64 = redis::cmd("XLEN")
        .arg("p{a}:s")
        .query(&mut f.inspect())
        .unwrap();
    assert_eq!(events, 1);
}

#[test]
fn generated_ids_carry_128_random_bits() {
    let f = Fixture::new();
    let mut p = f.progress();
    let a = p
        .start(&NewEntry {
            total_steps: 1,
            ..NewEntry::default()
        })
        .unwrap();
    let b = p
        .start(&NewEntry {
            total_steps: 1,
            ..NewEntry::default()
        })
        .unwrap();
    let (a, b) = (
        a.entry["id"].as_str().unwrap(),
        b.entry["id"].as_str().unwrap(),
    );
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn event_streams_start_with_a_snapshot_a_replay_or_a_reset() {
    let f = Fixture::new();
    let mut p = f.progress();
    let started = p.start(&new_entry("job-5", 5)).unwrap();
    let new_client = p.events_start("job-5", None).unwrap();
    assert_eq!(new_client.events.len(), 1);
    assert_eq!(new_client.events[0].event, "progress");
    assert_eq!(new_client.last_id, started.event_id);
    assert!(!new_client.finished);

    let one = p
        .update(
            "job-5",
            &Step {
                step: Some(1),
                ..Step::default()
            },
        )
        .unwrap();
    let two = p
        .update(
            "job-5",
            &Step {
                step: Some(2),
                ..Step::default()
            },
        )
        .unwrap();
    let resumed = p.events_start("job-5", Some(&started.event_id)).unwrap();
    let ids: Vec<&str> = resumed.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [one.event_id.as_str(), two.event_id.as_str()]);
    assert_eq!(resumed.last_id, two.event_id);
    // Up to date: nothing to replay, follow after the same id.
    let current = p.events_start("job-5", Some(&two.event_id)).unwrap();
    assert!(current.events.is_empty());
    assert_eq!(current.last_id, two.event_id);
    // An id from the future is a reset, as is one trimmed away.
    let future = p.events_start("job-5", Some("99999999999999-0")).unwrap();
    assert_eq!(future.events[0].event, "reset");
    let _: i64 = redis::cmd("XTRIM")
        .arg("p{job-5}:s")
        .arg("MAXLEN")
        .arg(1)
        .query(&mut f.inspect())
        .unwrap();
    let trimmed = p.events_start("job-5", Some(&started.event_id)).unwrap();
    assert_eq!(trimmed.events.len(), 1);
    assert_eq!(trimmed.events[0].event, "reset");
    assert_eq!(trimmed.last_id, two.event_id);

    // Waiting for the next event, as a component streaming by itself does.
    f.clock.advance_ms(10);
    let done = p.finish("job-5", Outcome::Completed, None).unwrap();
    let next = p
        .events_after("job-5", &two.event_id, 100)
        .unwrap()
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, done.event_id);
    assert_eq!(next[0].event, "completed");
    assert!(
        p.events_after("job-5", &done.event_id, 50)
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(p.events_start("job-5", None).unwrap().finished);

    assert!(matches!(
        p.events_start("job-5", Some("yesterday")),
        Err(ProgressError::Invalid { .. })
    ));
    assert_eq!(p.events_start("gone", None), Err(ProgressError::NotFound));
    p.delete("job-5").unwrap();
    assert_eq!(p.events_after("job-5", &done.event_id, 10).unwrap(), None);
}
