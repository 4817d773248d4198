//! Limits and retention, read from Spin variables in the wasm layer (missing → default).

/// Spin variable: Redis URL. Default [`DEFAULT_REDIS_ADDRESS`].
pub const VAR_REDIS_ADDRESS: &str = "redis_address";
/// Redis address used when `redis_address` is not set.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// The queue's tunables; each has a Spin variable `queue_<field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Largest job payload (its JSON text), in bytes. Default 512 KiB.
    pub max_payload_bytes: u64,
    /// How long an idempotency key is remembered, in ms. Default 24 h.
    pub idempotency_retention_ms: u64,
    /// Completed jobs kept per queue (the oldest are deleted beyond). Default 1000.
    pub keep_completed: u64,
    /// Completed jobs older than this are deleted, in ms. Default 24 h.
    pub keep_completed_ms: u64,
    /// Cancelled jobs kept per queue. Default 1000.
    pub keep_cancelled: u64,
    /// Dead letters kept per queue (the oldest are deleted beyond). Default 10 000.
    pub keep_dead: u64,
    /// Approximate length of each queue's events stream. Default 10 000.
    pub events_maxlen: u64,
    /// Lease when a claim names none, in ms. Default 30 000.
    pub default_lease_ms: u64,
    /// Most jobs one claim may take. Default 1000.
    pub max_claim: u64,
    /// Most delayed and expired jobs one claim moves back (bounded work per call).
    /// Default 1000.
    pub sweep_bound: u64,
    /// Most jobs in one batch enqueue. Default 1000.
    pub max_batch: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_payload_bytes: 512 * 1024,
            idempotency_retention_ms: 24 * 3_600_000,
            keep_completed: 1000,
            keep_completed_ms: 24 * 3_600_000,
            keep_cancelled: 1000,
            keep_dead: 10_000,
            events_maxlen: 10_000,
            default_lease_ms: 30_000,
            max_claim: 1000,
            sweep_bound: 1000,
            max_batch: 1000,
        }
    }
}

impl QueueConfig {
    /// Reads every variable through `lookup` (`None` = not set). A value that does not parse
    /// or is 0 falls back to the default, with a warning on stderr.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let read = |name: &str, default: u64| {
            redwasm_guest::variables::positive_u64_or_default(
                &lookup,
                "redwasm-queue",
                name,
                default,
            )
        };
        Self {
            max_payload_bytes: read("queue_max_payload_bytes", d.max_payload_bytes),
            idempotency_retention_ms: read(
                "queue_idempotency_retention_ms",
                d.idempotency_retention_ms,
            ),
            keep_completed: read("queue_keep_completed", d.keep_completed),
            keep_completed_ms: read("queue_keep_completed_ms", d.keep_completed_ms),
            keep_cancelled: read("queue_keep_cancelled", d.keep_cancelled),
            keep_dead: read("queue_keep_dead", d.keep_dead),
            events_maxlen: read("queue_events_maxlen", d.events_maxlen),
            default_lease_ms: read("queue_default_lease_ms", d.default_lease_ms),
            max_claim: read("queue_max_claim", d.max_claim),
            sweep_bound: read("queue_sweep_bound", d.sweep_bound),
            max_batch: read("queue_max_batch", d.max_batch),
        }
    }
}
