//! redwasm's own settings, kept in the tool tables Spin's schema reserves for other tools:
//! `[application.tool.redwasm]` ([`HostSettings`]) and `[component.<id>.tool.redwasm]`
//! ([`ComponentHostSettings`]). Spin ignores both, so one `spin.toml` serves both hosts.

use std::net::SocketAddr;

use serde::Deserialize;

/// The key under `tool` that holds redwasm's settings.
pub const TOOL_NAME: &str = "redwasm";

/// Application-wide host settings, from `[application.tool.redwasm]`. The command line and
/// environment (`--listen`, `REDIS_URL`) take precedence over these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// Address to listen on, e.g. `"0.0.0.0:3000"`.
    #[serde(default, deserialize_with = "socket_address")]
    pub listen: Option<SocketAddr>,
    /// Redis to use, e.g. `"redis://127.0.0.1:6379"`; when absent the host starts its own.
    pub redis_url: Option<String>,
    /// One Redis ACL user per sandboxed component (`"auto"`, `"required"`, `"off"`); what
    /// confines components' Lua scripts. Default `"auto"`: created when the host may.
    #[serde(default, deserialize_with = "acl_mode")]
    pub redis_acl: Option<crate::redis::AclMode>,
    /// How long a Lua script may run before the host kills it, in milliseconds. Default 500.
    pub script_time_limit_ms: Option<u64>,
    /// Networks outbound HTTP may never connect to, whatever `allowed_outbound_hosts` says,
    /// checked on the addresses a host name resolves to: CIDRs (`"10.0.0.0/8"`) or
    /// `"private"` (RFC 1918, loopback, link-local, unique-local). Default: link-local only
    /// (`169.254.0.0/16`, `fe80::/10`: cloud metadata endpoints).
    #[serde(default, deserialize_with = "blocked_networks")]
    pub blocked_networks: Option<Vec<ipnet::IpNet>>,
    /// Event streams open at once through the SSE fan-out (503 beyond). Default 20000.
    pub max_event_streams: Option<usize>,
    /// Event streams one component may have open at once (503 beyond). Default 15000.
    pub max_event_streams_per_component: Option<usize>,
    /// `[[application.tool.redwasm.queue_trigger]]`: queues whose jobs the host feeds to
    /// worker components. Spin ignores `tool` tables, so the same `spin.toml` still runs
    /// under `spin up` (where the worker's `[[trigger.redis]]` fallback applies).
    #[serde(default)]
    pub queue_trigger: Vec<QueueTriggerSettings>,
}

/// One queue-poll trigger: claim jobs of `queue` through the queue component and run each
/// in `component` (which exports `redwasm:queue/handler`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueTriggerSettings {
    /// The queue.
    pub queue: String,
    /// The worker component's id.
    pub component: String,
    /// The queue component's id (whose key namespace holds the queue). Default `queue`.
    #[serde(default = "QueueTriggerSettings::default_queue_component")]
    pub queue_component: String,
    /// Jobs run at once by this host. Default 8.
    #[serde(default = "QueueTriggerSettings::default_concurrency")]
    pub concurrency: usize,
    /// Lease per claim, renewed while a job runs, in ms. Default 30000.
    #[serde(default = "QueueTriggerSettings::default_lease_ms")]
    pub lease_ms: u64,
    /// Jobs claimed per round trip. Default 16.
    #[serde(default = "QueueTriggerSettings::default_batch")]
    pub batch: u32,
    /// At shutdown, how long running jobs may finish before their leases are given back,
    /// in ms. Default 10000.
    #[serde(default = "QueueTriggerSettings::default_drain_ms")]
    pub drain_ms: u64,
}

impl QueueTriggerSettings {
    fn default_queue_component() -> String {
        "queue".to_string()
    }
    fn default_concurrency() -> usize {
        8
    }
    fn default_lease_ms() -> u64 {
        30_000
    }
    fn default_batch() -> u32 {
        16
    }
    fn default_drain_ms() -> u64 {
        10_000
    }

    /// Checks the values; the message names the field.
    fn check(&self) -> Result<(), String> {
        if self.queue.is_empty()
            || self.queue.len() > 256
            || self.queue.contains(['{', '}'])
            || self.queue.chars().any(char::is_control)
        {
            return Err(format!(
                "queue_trigger `queue` = {:?} must be 1-256 bytes without `{{`, `}}` or control characters",
                self.queue
            ));
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err("queue_trigger `concurrency` must be from 1 to 10000".into());
        }
        if self.lease_ms < 100 {
            return Err("queue_trigger `lease_ms` must be at least 100".into());
        }
        if self.batch == 0 || self.batch > 1000 {
            return Err("queue_trigger `batch` must be from 1 to 1000".into());
        }
        Ok(())
    }
}

/// Reads `listen`, naming the field and an example in the error (serde's own message for a
/// bad address names neither).
fn socket_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`listen` = {text:?} is not a socket address like \"0.0.0.0:3000\""
        ))
    })
}

/// Reads `blocked_networks`, naming the entry in the error.
fn blocked_networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<ipnet::IpNet>>, D::Error> {
    let entries: Vec<String> = Deserialize::deserialize(deserializer)?;
    crate::outbound_http::parse_networks(&entries)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`blocked_networks`: {e}")))
}

/// Reads `redis_acl`, naming the field in the error.
fn acl_mode<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<crate::redis::AclMode>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`redis_acl`: {e}")))
}

/// Per-component host settings, from `[component.<id>.tool.redwasm]`; every field is
/// optional in the file and defaults as documented.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComponentHostSettings {
    /// Requests one instance may serve before it is replaced; `1` = a fresh instance per
    /// request (no state can leak between requests). Default 128.
    pub reuse: usize,
    /// Requests one instance may serve at once (only WASIp3 components can use more than 1).
    /// Default 16.
    pub max_concurrent_per_instance: usize,
    /// Confine the component's Redis keys to its own prefix. Default `true`.
    pub sandbox: bool,
    /// Time limit for a request to produce its response head, in milliseconds. Default 30000.
    pub request_timeout_ms: u64,
    /// How long an idle instance is kept for reuse, in milliseconds. Default 10000.
    pub idle_instance_timeout_ms: u64,
    /// Largest request body accepted, in bytes (413 above). Default 2 MiB.
    pub max_request_body_bytes: u64,
    /// Largest linear memory one instance may grow to, in bytes. Default 128 MiB.
    pub max_memory_bytes: u64,
    /// Call the component's `redwasm:http/handler` export, when it has one, instead of
    /// `wasi:http` (one call per request instead of about twenty). Default `true`.
    pub typed_http: bool,
    /// Largest Redis command the component may send (sum of its arguments), and the
    /// largest string `SETRANGE`/`SETBIT`/`BITFIELD` offsets may reach, in bytes. Default
    /// 8 MiB.
    pub max_redis_write_bytes: u64,
    /// Dedicated connections for blocking Redis commands (BLPOP, XREAD BLOCK, WAIT, ...)
    /// the component may hold at once. Default 4.
    pub max_redis_blocking: usize,
    /// Redis commands one request may send. Default 10000.
    pub max_redis_commands_per_request: u64,
    /// Bytes one request may move to and from Redis. Default 64 MiB.
    pub max_redis_bytes_per_request: u64,
    /// Cap on each outbound HTTP timeout the guest may ask for (connect, first byte, between
    /// bytes), and what it gets when it asks for none, in milliseconds. Default 30000.
    pub outbound_http_timeout_ms: u64,
    /// Largest outbound HTTP response body the guest may read, in bytes. Default 16 MiB.
    pub max_outbound_response_bytes: u64,
    /// Outbound HTTP requests one request (or job) may make. Default 64.
    pub max_outbound_requests_per_request: usize,
    /// `[[component.<id>.tool.redwasm.read_grants]]`: read-only views of other components'
    /// Redis streams (how the events component serves `jobs.<queue>`, `progress.<id>` and
    /// `cache.<ns>`). Default none.
    pub read_grants: Vec<ReadGrantSettings>,
}

/// One read-only grant: stream reads of keys matching `keys` (as this component names them)
/// reach component `component`'s namespace instead of this one's.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadGrantSettings {
    /// The component whose keys are read (its id in this manifest).
    pub component: String,
    /// The key pattern: literal text and `*` (which never crosses `{` or `}`), e.g.
    /// `"q{*}:ev"`.
    pub keys: String,
}

impl Default for ComponentHostSettings {
    fn default() -> Self {
        ComponentHostSettings {
            reuse: 128,
            max_concurrent_per_instance: 16,
            sandbox: true,
            request_timeout_ms: 30_000,
            idle_instance_timeout_ms: 10_000,
            max_request_body_bytes: 2 * 1024 * 1024,
            max_memory_bytes: 128 * 1024 * 1024,
            typed_http: true,
            max_redis_write_bytes: 8 * 1024 * 1024,
            max_redis_blocking: 4,
            max_redis_commands_per_request: 10_000,
            max_redis_bytes_per_request: 64 * 1024 * 1024,
            outbound_http_timeout_ms: 30_000,
            max_outbound_response_bytes: 16 * 1024 * 1024,
            max_outbound_requests_per_request: 64,
            read_grants: Vec::new(),
        }
    }
}

/// The smallest memory limit that lets any component start (one Wasm page).
const MIN_MEMORY_BYTES: u64 = 64 * 1024;

impl ComponentHostSettings {
    /// Reads `[component.<id>.tool.redwasm]`, checking that the values make sense.
    pub(super) fn from_table(table: &toml::Table) -> Result<Self, String> {
        let settings: ComponentHostSettings = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        let zero = [
            ("reuse", settings.reuse == 0),
            (
                "max_concurrent_per_instance",
                settings.max_concurrent_per_instance == 0,
            ),
            ("request_timeout_ms", settings.request_timeout_ms == 0),
            (
                "outbound_http_timeout_ms",
                settings.outbound_http_timeout_ms == 0,
            ),
            ("max_redis_write_bytes", settings.max_redis_write_bytes == 0),
            ("max_redis_blocking", settings.max_redis_blocking == 0),
            (
                "max_redis_commands_per_request",
                settings.max_redis_commands_per_request == 0,
            ),
            (
                "max_redis_bytes_per_request",
                settings.max_redis_bytes_per_request == 0,
            ),
        ];
        if let Some((field, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(format!("`{field}` must be at least 1"));
        }
        for grant in &settings.read_grants {
            crate::redis::validate_grant_pattern(&grant.keys)
                .map_err(|e| format!("`read_grants`: {e}"))?;
        }
        if settings.max_memory_bytes < MIN_MEMORY_BYTES {
            return Err(format!(
                "`max_memory_bytes` must be at least {MIN_MEMORY_BYTES} (one Wasm page)"
            ));
        }
        Ok(settings)
    }
}

impl HostSettings {
    /// Reads `[application.tool.redwasm]`.
    pub(super) fn from_table(table: &toml::Table) -> Result<Self, String> {
        let settings: HostSettings = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        if settings.script_time_limit_ms == Some(0) {
            return Err("`script_time_limit_ms` must be at least 1".into());
        }
        for trigger in &settings.queue_trigger {
            trigger.check()?;
        }
        Ok(settings)
    }
}
