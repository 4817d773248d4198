//! The only place the queue's Redis keys are built. Every key of one queue starts with
//! `q{<queue>}:`, so they share a Redis Cluster hash slot, and the scripts get that base as
//! `KEYS[1]` and build the rest from it (the sandbox prefixes `KEYS[1]`, so the keys they
//! build stay in the component's namespace and pass its ACL key pattern).
//!
//! | key              | type   | what |
//! |------------------|--------|------|
//! | `q{Q}:j:<id>`    | hash   | the job |
//! | `q{Q}:w`         | zset   | waiting: score = (1000 − priority) · 2^41 + sequence |
//! | `q{Q}:d`         | zset   | delayed and retrying, by due time |
//! | `q{Q}:f`         | set    | the retrying subset of `d` |
//! | `q{Q}:a`         | zset   | active, by lease deadline |
//! | `q{Q}:c`         | zset   | completed, by finish time (retention) |
//! | `q{Q}:x`         | zset   | cancelled, by finish time (retention) |
//! | `q{Q}:dead`      | zset   | dead letters, by time of death (capped) |
//! | `q{Q}:i:<key>`   | string | idempotency key → first job id (expires) |
//! | `q{Q}:seq`       | string | FIFO sequence within a priority |
//! | `q{Q}:stats`     | hash   | `processed_total`, `failed_total`, `dead_total` |
//! | `q{Q}:lat`       | hash   | latency histograms: `w<bucket>` wait, `r<bucket>` run |
//! | `q{Q}:ev`        | stream | job state changes (`event`, `id`, `ms`), capped |
//! | `q{Q}:n`         | list   | one wake-up token for workers blocked in `BLPOP` |
//! | `q{Q}:s`         | hash   | schedules: name → `{"cron"|"every_ms","job"}` |
//! | `q{Q}:sn`        | zset   | schedules: name → next tick (ms) |

use crate::error::QueueError;

/// Longest queue name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Checks a queue name: 1-256 bytes, no control characters, no `{`/`}` (they would break
/// the hash tag).
pub fn validate_queue(name: &str) -> Result<(), QueueError> {
    validate_segment("queue", name)?;
    if name.contains(['{', '}']) {
        return Err(QueueError::invalid("queue", "must not contain `{` or `}`"));
    }
    Ok(())
}

/// Checks a path segment or identifier: 1-256 bytes without control characters.
pub fn validate_segment(field: &str, value: &str) -> Result<(), QueueError> {
    if value.is_empty() {
        return Err(QueueError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(QueueError::invalid(
            field,
            format!("longer than {MAX_NAME_BYTES} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(QueueError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// `q{<queue>}:`: the base every script builds its keys from.
pub fn base(queue: &str) -> String {
    format!("q{{{queue}}}:")
}

/// `q{<queue>}:n`: the wake-up list a queue-poll trigger blocks on.
pub fn notify(queue: &str) -> String {
    format!("q{{{queue}}}:n")
}

/// `q{<queue>}:s`: the schedules hash.
pub fn schedules(queue: &str) -> String {
    format!("q{{{queue}}}:s")
}

/// `q{<queue>}:sn`: the schedules' next ticks.
pub fn schedule_ticks(queue: &str) -> String {
    format!("q{{{queue}}}:sn")
}

/// `q{<queue>}:ev`: the events stream (every state change: `event`, `id`, `ms`).
pub fn events(queue: &str) -> String {
    redwasm_guest::channels::jobs_stream(queue)
}

/// `q{<queue>}:j:<id>`: the job hash.
pub fn job(queue: &str, id: &str) -> String {
    format!("q{{{queue}}}:j:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_hash_tag() {
        assert_eq!(base("emails"), "q{emails}:");
        assert_eq!(job("emails", "abc"), "q{emails}:j:abc");
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_queue("emails").is_ok());
        assert!(validate_queue("").is_err());
        assert!(validate_queue("a{b").is_err());
        assert!(validate_queue("a\nb").is_err());
        assert!(validate_queue(&"x".repeat(257)).is_err());
    }
}
