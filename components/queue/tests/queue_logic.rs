//! The queue's logic against a real redis-server, with a manual clock (no test sleeps).

mod common;

use common::{Fixture, T0_MS};
use redwasm_queue::{Clock, Nacked, NewJob, QueueConfig, QueueError};
use serde_json::json;

fn job(n: i64) -> NewJob {
    NewJob::new("t", json!({ "n": n }))
}

fn with_priority(n: i64, priority: i64) -> NewJob {
    NewJob { priority, ..job(n) }
}

fn claimed_ns(claimed: &[redwasm_queue::Claimed]) -> Vec<i64> {
    claimed
        .iter()
        .map(|c| c.job.payload["n"].as_i64().unwrap())
        .collect()
}

#[test]
fn higher_priority_first_fifo_within_one() {
    let f = Fixture::new();
    let mut q = f.queues();
    let jobs = [
        with_priority(1, 0),
        with_priority(2, 10),
        with_priority(3, 0),
        with_priority(4, -10),
        with_priority(5, 10),
        with_priority(6, 1000),
        with_priority(7, -1000),
    ];
    let out = q.enqueue("orders", &jobs).unwrap();
    assert!(out.iter().all(|e| e.status == "waiting" && !e.duplicate));
    let claimed = q.claim("orders", "w", 100, 30_000).unwrap();
    assert_eq!(claimed_ns(&claimed), [6, 2, 5, 1, 3, 4, 7]);
    // Each claimed job is active with its own lease.
    let leases: std::collections::BTreeSet<_> = claimed.iter().map(|c| &c.lease).collect();
    assert_eq!(leases.len(), 7);
    assert!(
        claimed
            .iter()
            .all(|c| c.job.status == "active" && c.job.attempts == 1)
    );
    assert!(q.claim("orders", "w", 10, 30_000).unwrap().is_empty());
}

#[test]
fn delayed_and_run_at_jobs_wait_for_their_time() {
    let f = Fixture::new();
    let mut q = f.queues();
    let later = NewJob {
        run_at_ms: Some(T0_MS + 5_000),
        ..job(1)
    };
    let sooner = NewJob {
        run_at_ms: Some(T0_MS + 1_000),
        ..job(2)
    };
    let out = q.enqueue("mail", &[later, sooner, job(3)]).unwrap();
    assert_eq!(out[0].status, "delayed");
    assert_eq!(out[2].status, "waiting");
    let status = q.get("mail", &out[0].id).unwrap().unwrap();
    assert_eq!(status.status, "delayed");
    assert_eq!(status.run_at_ms, Some(T0_MS + 5_000));
    assert_eq!(claimed_ns(&q.claim("mail", "w", 10, 60_000).unwrap()), [3]);
    f.clock.advance_ms(999);
    assert!(q.claim("mail", "w", 10, 1000).unwrap().is_empty());
    f.clock.advance_ms(1);
    assert_eq!(claimed_ns(&q.claim("mail", "w", 10, 60_000).unwrap()), [2]);
    f.clock.advance_ms(4_000);
    assert_eq!(claimed_ns(&q.claim("mail", "w", 10, 60_000).unwrap()), [1]);
}

#[test]
fn idempotency_keys_return_the_first_job() {
    let f = Fixture::new();
    let mut q = f.queues();
    let keyed = NewJob {
        idempotency_key: Some("order-42".into()),
        ..job(1)
    };
    let first = q.enqueue("orders", std::slice::from_ref(&keyed)).unwrap();
    let again = q.enqueue("orders", &[keyed.clone(), keyed]).unwrap();
    assert!(!first[0].duplicate);
    for dup in &again {
        assert!(dup.duplicate);
        assert_eq!(dup.id, first[0].id);
        assert_eq!(dup.status, "waiting");
    }
    assert_eq!(q.stats("orders").unwrap().waiting, 1);
    // The key is kept for the retention window, not forever.
    let ttl: i64 = redis::cmd("PTTL")
        .arg("q{orders}:i:order-42")
        .query(&mut f.inspect())
        .unwrap();
    assert!(
        ttl > 0 && ttl <= f.config.idempotency_retention_ms as i64,
        "{ttl}"
    );
}

#[test]
fn ack_completes_and_a_stale_lease_changes_nothing() {
    let f = Fixture::new();
    let mut q = f.queues();
    let id = q.enqueue("q", &[job(1)]).unwrap()[0].id.clone();
    let first = q.claim("q", "w1", 1, 1_000).unwrap().remove(0);
    // The lease expires; another worker claims the job again (attempt 2).
    f.clock.advance_ms(1_001);
    let second = q.claim("q", "w2", 1, 30_000).unwrap().remove(0);
    assert_eq!(second.job.id, id);
    assert_eq!(second.job.attempts, 2);
    assert_eq!(second.job.error.as_deref(), Some("stalled: lease expired"));
    assert_ne!(first.lease, second.lease);
    // The first worker's ack, nack and heartbeat are refused and change nothing.
    assert_eq!(
        q.ack("q", &id, &first.lease, Some(&json!("late"))),
        Err(QueueError::Conflict("active".into()))
    );
    assert_eq!(
        q.nack("q", &id, &first.lease, "late", true),
        Err(QueueError::Conflict("active".into()))
    );
    assert_eq!(
        q.heartbeat("q", &id, &first.lease, 1000),
        Err(QueueError::Conflict("active".into()))
    );
    f.clock.advance_ms(10);
    q.ack("q", &id, &second.lease, Some(&json!({"sent": true})))
        .unwrap();
    let done = q.get("q", &id).unwrap().unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.result, Some(json!({"sent": true})));
    assert_eq!(done.finished_ms, Some(T0_MS + 1_011));
    assert_eq!(done.started_ms, Some(T0_MS));
    // A second ack with the same lease: already completed.
    assert_eq!(
        q.ack("q", &id, &second.lease, None),
        Err(QueueError::Conflict("completed".into()))
    );
    assert_eq!(
        q.ack("q", "nope", &second.lease, None),
        Err(QueueError::NotFound)
    );
    let stats = q.stats("q").unwrap();
    assert_eq!(
        (stats.completed, stats.processed_total, stats.active),
        (1, 1, 0)
    );
}

#[test]
fn heartbeat_extends_the_lease() {
    let f = Fixture::new();
    let mut q = f.queues();
    q.enqueue("q", &[job(1)]).unwrap();
    let c = q.claim("q", "w", 1, 1_000).unwrap().remove(0);
    f.clock.advance_ms(900);
    assert_eq!(
        q.heartbeat("q", &c.job.id, &c.lease, 1_000).unwrap(),
        T0_MS + 1_900
    );
    f.clock.advance_ms(900);
    // Past the original deadline, within the extended one: nobody else gets it.
    assert!(q.claim("q", "other", 1, 1_000).unwrap().is_empty());
    q.ack("q", &c.job.id, &c.lease, None).unwrap();
}

#[test]
fn nack_backs_off_exponentially_with_jitter_then_dead_letters() {
    let f = Fixture::new();
    let mut q = f.queues();
    let mut new = job(1);
    new.max_attempts = 4;
    new.backoff.base_ms = 1_000;
    new.backoff.max_ms = 3_000;
    let id = q.enqueue("q", &[new]).unwrap()[0].id.clone();
    // Delays: 1 s, 2 s, then capped at 3 s; each with equal jitter (half to all of it).
    for delay in [1_000u64, 2_000, 3_000] {
        let c = q.claim("q", "w", 1, 30_000).unwrap().remove(0);
        let now = f.clock.now_ms();
        let Nacked::Retry(due) = q.nack("q", &id, &c.lease, "boom", true).unwrap() else {
            panic!("expected a retry");
        };
        assert!(
            (now + delay / 2..=now + delay).contains(&due),
            "delay {delay}: due {due} from {now}"
        );
        let failed = q.get("q", &id).unwrap().unwrap();
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.error.as_deref(), Some("boom"));
        assert_eq!(q.stats("q").unwrap().failed, 1);
        // Not before its time.
        f.clock.set_ms(due - 1);
        assert!(q.claim("q", "w", 1, 30_000).unwrap().is_empty());
        f.clock.set_ms(due);
    }
    let c = q.claim("q", "w", 1, 30_000).unwrap().remove(0);
    assert_eq!(c.job.attempts, 4);
    assert_eq!(
        q.nack("q", &id, &c.lease, "still boom", true).unwrap(),
        Nacked::Dead
    );
    let dead = q.dead("q", 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].status, "dead");
    assert_eq!(dead[0].error.as_deref(), Some("still boom"));
    let stats = q.stats("q").unwrap();
    assert_eq!(
        (stats.dead, stats.failed_total, stats.dead_total),
        (1, 4, 1)
    );
    // Requeue: waiting again with its attempts reset.
    assert_eq!(q.requeue("q", None).unwrap(), 1);
    let back = q.get("q", &id).unwrap().unwrap();
    assert_eq!((back.status.as_str(), back.attempts), ("waiting", 0));
    assert!(q.dead("q", 10).unwrap().is_empty());
    // retry = false: dead at once.
    let c = q.claim("q", "w", 1, 30_000).unwrap().remove(0);
    assert_eq!(
        q.nack("q", &id, &c.lease, "fatal", false).unwrap(),
        Nacked::Dead
    );
    assert_eq!(
        q.requeue("q", Some(&[id.clone(), "other".into()])).unwrap(),
        1
    );
}

#[test]
fn an_expired_last_attempt_is_dead_as_stalled() {
    let f = Fixture::new();
    let mut q = f.queues();
    let mut new = job(1);
    new.max_attempts = 1;
    let id = q.enqueue("q", &[new]).unwrap()[0].id.clone();
    q.claim("q", "w", 1, 500).unwrap();
    f.clock.advance_ms(501);
    assert!(q.claim("q", "w", 1, 500).unwrap().is_empty());
    let dead = q.get("q", &id).unwrap().unwrap();
    assert_eq!(dead.status, "dead");
    assert_eq!(dead.error.as_deref(), Some("stalled: lease expired"));
}

#[test]
fn cancel_waiting_delayed_and_active_jobs() {
    let f = Fixture::new();
    let mut q = f.queues();
    let delayed = NewJob {
        run_at_ms: Some(T0_MS + 1_000),
        ..job(2)
    };
    let ids: Vec<String> = q
        .enqueue("q", &[job(1), delayed, job(3)])
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(q.cancel("q", &ids[0]).unwrap().status, "cancelled");
    assert_eq!(q.cancel("q", &ids[1]).unwrap().status, "cancelled");
    let active = q.claim("q", "w", 10, 30_000).unwrap();
    assert_eq!(claimed_ns(&active), [3]);
    let lease = &active[0].lease;
    assert_eq!(q.cancel("q", &ids[2]).unwrap().status, "cancelled");
    // The worker learns it from its next heartbeat or ack.
    assert_eq!(
        q.heartbeat("q", &ids[2], lease, 1_000),
        Err(QueueError::Conflict("cancelled".into()))
    );
    assert_eq!(
        q.ack("q", &ids[2], lease, None),
        Err(QueueError::Conflict("cancelled".into()))
    );
    // Nothing comes back, not even the delayed one at its time.
    f.clock.advance_ms(2_000);
    assert!(q.claim("q", "w", 10, 30_000).unwrap().is_empty());
    assert_eq!(
        q.cancel("q", &ids[0]),
        Err(QueueError::Conflict("cancelled".into()))
    );
    assert_eq!(q.cancel("q", "missing"), Err(QueueError::NotFound));
    assert_eq!(q.stats("q").unwrap().cancelled, 3);
}

#[test]
fn memory_stays_bounded_under_a_steady_load() {
    let f = Fixture::with_config(QueueConfig {
        keep_completed: 50,
        keep_dead: 20,
        events_maxlen: 100,
        ..QueueConfig::default()
    });
    let mut q = f.queues();
    let mut inspect = f.inspect();
    let mut sizes = Vec::new();
    for round in 0..5 {
        let jobs: Vec<NewJob> = (0..400).map(|n| job(round * 1000 + n)).collect();
        q.enqueue("steady", &jobs).unwrap();
        let mut done = 0;
        while done < 400 {
            for c in q.claim("steady", "w", 100, 30_000).unwrap() {
                if c.job.payload["n"].as_i64().unwrap() % 10 == 0 {
                    q.nack("steady", &c.job.id, &c.lease, "poison", false)
                        .unwrap();
                } else {
                    q.ack("steady", &c.job.id, &c.lease, Some(&json!(1)))
                        .unwrap();
                }
                done += 1;
            }
        }
        f.clock.advance_ms(1_000);
        let keys: i64 = redis::cmd("DBSIZE").query(&mut inspect).unwrap();
        let memory: String = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg("q{steady}:ev")
            .query(&mut inspect)
            .map(|n: i64| n.to_string())
            .unwrap_or_default();
        sizes.push((keys, memory));
    }
    let stats = q.stats("steady").unwrap();
    assert_eq!(stats.processed_total, 5 * 360);
    assert_eq!((stats.completed, stats.dead), (50, 20));
    // 50 completed + 20 dead job hashes, plus the queue's fixed keys: no growth per round.
    let (first, last) = (sizes[0].0, sizes[4].0);
    assert_eq!(first, last, "keys per round: {sizes:?}");
    assert!(last <= 50 + 20 + 10, "{sizes:?}");
    let events: i64 = redis::cmd("XLEN")
        .arg("q{steady}:ev")
        .query(&mut inspect)
        .unwrap();
    assert!(events < 400, "the events stream is capped: {events}");
}

#[test]
fn batches_enqueue_and_claim_many_in_one_call() {
    let f = Fixture::new();
    let mut q = f.queues();
    let jobs: Vec<NewJob> = (0..1000).map(job).collect();
    let out = q.enqueue("bulk", &jobs).unwrap();
    assert_eq!(out.len(), 1000);
    let claimed = q.claim("bulk", "w", 1000, 30_000).unwrap();
    assert_eq!(claimed_ns(&claimed), (0..1000).collect::<Vec<_>>());
    let too_many: Vec<NewJob> = (0..1001).map(job).collect();
    assert!(matches!(
        q.enqueue("bulk", &too_many),
        Err(QueueError::TooLarge { .. })
    ));
    let stats = q.stats("bulk").unwrap();
    assert_eq!(stats.active, 1000);
    assert!(stats.wait_ms[2] <= 1, "{stats:?}");
}

#[test]
fn latency_percentiles_come_from_the_histograms() {
    let f = Fixture::new();
    let mut q = f.queues();
    q.enqueue("lat", &(0..100).map(job).collect::<Vec<_>>())
        .unwrap();
    f.clock.advance_ms(1_000);
    for c in q.claim("lat", "w", 100, 30_000).unwrap() {
        q.ack("lat", &c.job.id, &c.lease, None).unwrap();
    }
    let stats = q.stats("lat").unwrap();
    // Waited 1 s each, ran 0 ms: the buckets' bounds (~19 % wide) bracket them.
    assert!((1_000..=1_200).contains(&stats.wait_ms[0]), "{stats:?}");
    assert_eq!(stats.run_ms, [1, 1, 1]);
}

#[test]
fn bad_input_names_the_field() {
    let cases = [
        (json!({"payload": 1, "priority": "urgent"}), "priority"),
        (json!({"payload": 1, "priority": 1001}), "priority"),
        (json!({"payload": 1, "delay_ms": -5}), "delay_ms"),
        (
            json!({"payload": 1, "delay_ms": 1, "run_at_ms": 2}),
            "delay_ms",
        ),
        (json!({"payload": 1, "max_attempts": 0}), "max_attempts"),
        (
            json!({"payload": 1, "backoff": {"type": "linear"}}),
            "backoff.type",
        ),
        (
            json!({"payload": 1, "backoff": {"base_ms": 10, "max_ms": 5}}),
            "backoff.max_ms",
        ),
        (json!({"payload": 1, "timeout_ms": 0}), "timeout_ms"),
        (
            json!({"payload": 1, "idempotency_key": "a\u{7}b"}),
            "idempotency_key",
        ),
        (json!({"payload": 1, "colour": "red"}), "body"),
        (json!({"type": "x\ny"}), "type"),
    ];
    for (input, field) in cases {
        match NewJob::from_json(input.clone(), "", T0_MS, 1024) {
            Err(QueueError::Invalid { field: f, .. }) => assert_eq!(f, field, "{input}"),
            other => panic!("{input}: {other:?}"),
        }
    }
    match NewJob::from_json(json!({"payload": "x".repeat(2000)}), "[3].", T0_MS, 1024) {
        Err(QueueError::TooLarge { field, limit }) => {
            assert_eq!((field.as_str(), limit), ("[3].payload", 1024))
        }
        other => panic!("{other:?}"),
    }
    let ok = NewJob::from_json(
        json!({"type": "mail", "payload": {"to": "a"}, "priority": "high", "delay_ms": 500}),
        "",
        T0_MS,
        1024,
    )
    .unwrap();
    assert_eq!((ok.priority, ok.run_at_ms), (10, Some(T0_MS + 500)));
    let f = Fixture::new();
    let mut q = f.queues();
    assert!(matches!(
        q.enqueue("a{b}", &[job(1)]),
        Err(QueueError::Invalid { .. })
    ));
    assert!(matches!(
        q.claim("q", "w", 0, 1000),
        Err(QueueError::Invalid { .. })
    ));
    // Nothing was written by any of the refusals.
    let keys: i64 = redis::cmd("DBSIZE").query(&mut f.inspect()).unwrap();
    assert_eq!(keys, 0);
}

#[test]
fn schedules_fire_once_per_tick_however_many_claimers() {
    let f = Fixture::new();
    let (mut a, mut b) = (f.queues(), f.queues());
    let (schedule, created) = a
        .put_schedule(
            "cron",
            "tick",
            json!({"every_ms": 1000, "job": {"type": "beat", "payload": {"k": 1}}}),
        )
        .unwrap();
    assert!(created);
    assert_eq!(schedule.next_run_ms, Some(T0_MS + 1000));
    // Not yet due: nothing fires; the claim says when to come back.
    let (jobs, next_due) = a.claim_next("cron", "a", 10, 60_000).unwrap();
    assert!(jobs.is_empty());
    assert_eq!(next_due, Some(T0_MS + 1000));
    let mut claimed = 0;
    for tick in 1..=5u64 {
        f.clock.set_ms(T0_MS + tick * 1000);
        // Two hosts claim at the same tick, each twice: one job per tick in all.
        for _ in 0..2 {
            claimed += a.claim("cron", "w", 10, 60_000).unwrap().len();
            claimed += b.claim("cron", "w", 10, 60_000).unwrap().len();
        }
    }
    assert_eq!(
        claimed, 5,
        "one job per tick, taken by the claim that fired it"
    );
    let stats = a.stats("cron").unwrap();
    assert_eq!((stats.waiting, stats.active), (0, 5));
    // Nobody claimed for 10 s: the missed ticks fire once, then the schedule resumes after now.
    f.clock.set_ms(T0_MS + 15_500);
    assert_eq!(b.claim("cron", "w", 10, 60_000).unwrap().len(), 1);
    assert_eq!(
        b.schedules("cron").unwrap()[0].next_run_ms,
        Some(T0_MS + 16_500)
    );
    // Cron, with seconds.
    a.put_schedule(
        "cron",
        "every-10s",
        json!({"cron": "*/10 * * * * *", "job": {"payload": 2}}),
    )
    .unwrap();
    let names: Vec<String> = a
        .schedules("cron")
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["every-10s", "tick"]);
    assert!(a.delete_schedule("cron", "tick").unwrap());
    assert!(!a.delete_schedule("cron", "tick").unwrap());
    f.clock.set_ms(T0_MS + 20_000);
    let jobs = a.claim("cron", "w", 10, 60_000).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job.payload, json!(2));
    // A bad schedule writes nothing.
    assert!(matches!(
        a.put_schedule("cron", "bad", json!({"cron": "nope", "job": {}})),
        Err(QueueError::Invalid { .. })
    ));
    assert!(matches!(
        a.put_schedule("cron", "bad", json!({"every_ms": 1000, "job": {"priority": "urgent"}})),
        Err(QueueError::Invalid { field, .. }) if field == "job.priority"
    ));
    assert_eq!(a.schedules("cron").unwrap().len(), 1);
}
