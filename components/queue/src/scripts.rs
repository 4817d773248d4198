//! The Lua scripts (files under `lua/`, each documenting its KEYS and ARGV).

use crate::redis::Script;

/// Enqueue one or many jobs (idempotency keys, delays, priorities).
pub static ENQUEUE: Script = Script::new("enqueue", include_str!("../lua/enqueue.lua"));
/// Sweep due and expired jobs, then lease up to `max` jobs.
pub static CLAIM: Script = Script::new("claim", include_str!("../lua/claim.lua"));
/// Complete a leased job (and apply retention).
pub static ACK: Script = Script::new("ack", include_str!("../lua/ack.lua"));
/// Fail a leased job: retry with backoff, or dead letter.
pub static NACK: Script = Script::new("nack", include_str!("../lua/nack.lua"));
/// Extend a lease.
pub static HEARTBEAT: Script = Script::new("heartbeat", include_str!("../lua/heartbeat.lua"));
/// Cancel a job in any unfinished state.
pub static CANCEL: Script = Script::new("cancel", include_str!("../lua/cancel.lua"));
/// The newest jobs of one set, whole.
pub static LIST: Script = Script::new("list", include_str!("../lua/list.lua"));
/// Dead letters back to waiting.
pub static REQUEUE: Script = Script::new("requeue", include_str!("../lua/requeue.lua"));
/// Counts, totals and latency histograms.
pub static STATS: Script = Script::new("stats", include_str!("../lua/stats.lua"));
/// Give a leased job back without spending its attempt.
pub static RELEASE: Script = Script::new("release", include_str!("../lua/release.lua"));
/// Create or replace a schedule.
pub static SCHEDULE_PUT: Script =
    Script::new("schedule_put", include_str!("../lua/schedule_put.lua"));
/// Remove a schedule.
pub static SCHEDULE_DELETE: Script = Script::new(
    "schedule_delete",
    include_str!("../lua/schedule_delete.lua"),
);
/// Move a schedule past the tick just fired, once.
pub static SCHEDULE_ADVANCE: Script = Script::new(
    "schedule_advance",
    include_str!("../lua/schedule_advance.lua"),
);
/// Where a queue's event stream starts: live, a replay after `Last-Event-ID`, or a reset.
pub static EVENTS: Script = Script::new("events", include_str!("../lua/events.lua"));
