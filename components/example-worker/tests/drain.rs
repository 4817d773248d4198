//! The Spin fallback's drain against a real redis-server: jobs enqueued by the queue's own
//! logic are claimed, run and acknowledged (or failed) through the queue's Lua, in bounded
//! batches.

use redwasm_example_worker::drain::{DrainOptions, drain};
use redwasm_guest::native::RedisRs;
use redwasm_queue::{ManualClock, NewJob, QueueConfig, Queues};
use redwasm_testkit::RedisServer;
use serde_json::json;

const T0_MS: u64 = 1_735_689_600_000;

#[test]
fn a_notification_drains_what_is_due_in_bounded_batches() {
    let server = RedisServer::start();
    let clock = ManualClock::new(T0_MS);
    let mut queues = Queues::new(
        RedisRs::new(&server.url()),
        clock.clone(),
        QueueConfig::default(),
    );
    let mut jobs: Vec<NewJob> = (0..40)
        .map(|i| NewJob::new("checksum", json!({"text": format!("t{i}"), "rounds": 10})))
        .collect();
    jobs.push(NewJob {
        max_attempts: 1,
        ..NewJob::new("fatal", json!({"message": "bad input"}))
    });
    let ids: Vec<String> = queues
        .enqueue("work", &jobs)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut redis = RedisRs::new(&server.url());
    let now = || T0_MS + 10;
    let options = DrainOptions {
        max_jobs: 30,
        ..DrainOptions::new("work")
    };
    // One notification: at most 30 jobs.
    let first = drain(&mut redis, &now, &options, &redwasm_example_worker::run).unwrap();
    assert_eq!(first.completed + first.failed, 30);
    // The next drains the rest.
    let second = drain(&mut redis, &now, &options, &redwasm_example_worker::run).unwrap();
    assert_eq!(first.completed + second.completed, 40);
    assert_eq!(first.failed + second.failed, 1);
    let done = queues.get("work", &ids[0]).unwrap().unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.result.unwrap()["rounds"], 10);
    let dead = queues.get("work", &ids[40]).unwrap().unwrap();
    assert_eq!(
        (dead.status.as_str(), dead.error.as_deref()),
        ("dead", Some("bad input"))
    );
    // Nothing left: a third notification does nothing.
    assert_eq!(
        drain(&mut redis, &now, &options, &redwasm_example_worker::run).unwrap(),
        Default::default()
    );
}
