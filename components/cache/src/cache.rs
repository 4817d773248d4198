//! The cache logic: plain Rust over [`RedisExec`] and [`Clock`], shared by the HTTP handler
//! and the typed `redwasm:cache/cache` export.

use crate::clock::Clock;
use crate::config::{CacheConfig, MAX_JITTER_PCT, MAX_TTL_MS};
use crate::error::CacheError;
use crate::keys::NamespaceKeys;
use crate::record::{self, Record};
use crate::redis::{Arg, RedisExec, Value};
use crate::scripts;
use crate::token::{new_token, random_up_to};
use crate::validate;

/// Content type stored when none is given.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Entries kept in a namespace's events stream (`cache.<ns>`; approximate, `MAXLEN ~`).
pub const EVENTS_MAXLEN: i64 = 1000;
/// A namespace's events stream expires this long after its last event (7 days), so a
/// namespace nobody invalidates any more leaves nothing behind.
pub const EVENTS_RETENTION_MS: i64 = 7 * 24 * 3_600_000;

/// First pause between lease-wait polls, in ms; doubles up to [`LEASE_POLL_MAX_MS`].
pub const LEASE_POLL_FIRST_MS: u64 = 2;
/// Longest pause between lease-wait polls, in ms.
pub const LEASE_POLL_MAX_MS: u64 = 50;

/// A cached value (WIT `entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The stored content type.
    pub content_type: String,
    /// Milliseconds since the value was stored (by the caller's clock).
    pub age_ms: u64,
    /// True within the stale-while-revalidate grace period.
    pub stale: bool,
    /// Set for exactly one reader per expiry of a stale entry.
    pub revalidate_token: Option<String>,
}

/// The answer of [`Cache::lookup`] (WIT `lookup-result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The value (fresh or stale).
    Hit(Entry),
    /// The caller holds the single-flight lease: compute, then `set` with `if_match` = token.
    Lease(String),
    /// Another caller holds the lease and no value arrived in time.
    Miss,
}

/// How to store a value (WIT `set-options`). `None` means "the default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Time to live in ms; default from [`CacheConfig::default_ttl_s`].
    pub ttl_ms: Option<u64>,
    /// Grace period after the TTL in ms; default 0.
    pub swr_ms: Option<u64>,
    /// Jitter added to the TTL, percent (0-50) of it; default from the configuration.
    pub jitter_pct: Option<u8>,
    /// Tags for [`Cache::invalidate_tags`].
    pub tags: Vec<String>,
    /// Content type; default [`DEFAULT_CONTENT_TYPE`].
    pub content_type: Option<String>,
    /// A lease or revalidate token: the write succeeds only while it is current.
    pub if_match: Option<String>,
}

/// Per-namespace counters (WIT `stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Reads answered with a value, fresh or stale.
    pub hits: u64,
    /// Reads answered without a value.
    pub misses: u64,
    /// The subset of `hits` served stale within the grace period.
    pub stale_hits: u64,
    /// Entries currently live (fresh or in grace).
    pub keys: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, 0 when there were no reads.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// The answer of [`Cache::get_uncounted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The value (fresh or stale), `None` on a miss.
    pub entry: Option<Entry>,
    /// True when this read was a fresh hit that was *not* counted: the caller reports it
    /// through [`Cache::record_hits`]. False when the read counted itself.
    pub uncounted_hit: bool,
}

/// The outcome of one run of `get.lua`.
enum ReadOutcome {
    Hit(Entry),
    Miss,
    LeaseGranted(String),
    LeaseHeldElsewhere,
}

/// The cache: a Redis executor, a clock and the limits.
pub struct Cache<R, C> {
    redis: R,
    clock: C,
    config: CacheConfig,
}

impl<R: RedisExec, C: Clock> Cache<R, C> {
    /// A cache over `redis`, reading time from `clock`.
    pub fn new(redis: R, clock: C, config: CacheConfig) -> Self {
        Self {
            redis,
            clock,
            config,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The Redis executor.
    pub fn redis_mut(&mut self) -> &mut R {
        &mut self.redis
    }

    /// Reads a value; `None` on a miss. One script round trip.
    pub fn get(&mut self, ns: &str, key: &str) -> Result<Option<Entry>, CacheError> {
        validate::segment("ns", ns)?;
        validate::segment("key", key)?;
        match self.read(ns, key, 0, true)? {
            ReadOutcome::Hit(entry) => Ok(Some(entry)),
            _ => Ok(None),
        }
    }

    /// Reads with single-flight on a miss: exactly one concurrent caller gets
    /// [`Lookup::Lease`] (valid for `wait_ms`); the others poll (2 ms, doubling, capped at
    /// 50 ms) for up to `wait_ms` and get the value or [`Lookup::Miss`].
    /// `wait_ms` must be 1..=`max_lease_ms`.
    pub fn lookup(&mut self, ns: &str, key: &str, wait_ms: u64) -> Result<Lookup, CacheError> {
        validate::segment("ns", ns)?;
        validate::segment("key", key)?;
        if wait_ms == 0 || wait_ms > self.config.max_lease_ms {
            return Err(CacheError::invalid(
                "wait-ms",
                format!("must be 1-{}", self.config.max_lease_ms),
            ));
        }
        let deadline = self.clock.now_ms().saturating_add(wait_ms);
        match self.read(ns, key, wait_ms, true)? {
            ReadOutcome::Hit(entry) => return Ok(Lookup::Hit(entry)),
            ReadOutcome::LeaseGranted(token) => return Ok(Lookup::Lease(token)),
            ReadOutcome::Miss | ReadOutcome::LeaseHeldElsewhere => {}
        }
        let mut pause = LEASE_POLL_FIRST_MS;
        loop {
            let now = self.clock.now_ms();
            if now >= deadline {
                return Ok(Lookup::Miss);
            }
            self.clock.sleep_ms(pause.min(deadline - now));
            pause = (pause * 2).min(LEASE_POLL_MAX_MS);
            // Polls neither take the lease nor count in the stats: the request was already
            // counted once, as a miss.
            if let ReadOutcome::Hit(entry) = self.read(ns, key, 0, false)? {
                return Ok(Lookup::Hit(entry));
            }
        }
    }

    /// Reads a value without running a script when it is a fresh hit — one `MGET` of the
    /// entry and the namespace version — and without counting that hit: the caller must
    /// report it later through [`Cache::record_hits`] (hosts batch these). Anything else (a
    /// stale entry, a miss, an entry of an older namespace version) falls back to the
    /// counted read of [`Cache::get`], so `uncounted_hit` is false for it.
    pub fn get_uncounted(&mut self, ns: &str, key: &str) -> Result<Read, CacheError> {
        validate::segment("ns", ns)?;
        validate::segment("key", key)?;
        let keys = NamespaceKeys::new(ns);
        let now = self.clock.now_ms();
        let entry_key = keys.entry(key);
        let version_key = keys.version();
        let reply = self.redis.exec(
            "MGET",
            &[
                Arg::from(entry_key.as_str()),
                Arg::from(version_key.as_str()),
            ],
        )?;
        if let [Value::Bytes(stored), version] = reply.as_slice() {
            let version = match version {
                Value::Bytes(v) => Some(v.as_slice()),
                _ => None,
            };
            if let Some(record) = Record::decode(stored)
                && record.is_of_version(version)
                && now < record.fresh_until_ms
            {
                return Ok(Read {
                    entry: Some(entry_of(&record, now, false, None)),
                    uncounted_hit: true,
                });
            }
        }
        let entry = match self.read(ns, key, 0, true)? {
            ReadOutcome::Hit(entry) => Some(entry),
            _ => None,
        };
        Ok(Read {
            entry,
            uncounted_hit: false,
        })
    }

    /// Adds `hits` reads answered fresh to `ns`'s counters: the reports of
    /// [`Cache::get_uncounted`]'s hits. One `HINCRBY`, no script.
    pub fn record_hits(&mut self, ns: &str, hits: u64) -> Result<(), CacheError> {
        validate::segment("ns", ns)?;
        if hits == 0 {
            return Ok(());
        }
        let stats_key = NamespaceKeys::new(ns).stats();
        self.redis.exec(
            "HINCRBY",
            &[
                Arg::from(stats_key.as_str()),
                Arg::from("hits"),
                Arg::Int(to_i64(hits)),
            ],
        )?;
        Ok(())
    }

    fn read(
        &mut self,
        ns: &str,
        key: &str,
        lease_ms: u64,
        count: bool,
    ) -> Result<ReadOutcome, CacheError> {
        let keys = NamespaceKeys::new(ns);
        let now = self.clock.now_ms();
        let token = new_token();
        let reply = scripts::GET.run(
            &mut self.redis,
            &[
                keys.entry(key),
                keys.version(),
                keys.stats(),
                keys.lease(key),
                keys.claim(key),
            ],
            &[
                Arg::Int(to_i64(now)),
                Arg::Bytes(token.as_bytes()),
                Arg::Int(to_i64(lease_ms)),
                Arg::Bytes(if count { b"1" } else { b"0" }),
            ],
        )?;
        let reply = Reply::new("get", &reply);
        match reply.int(0)? {
            0 => Ok(ReadOutcome::Miss),
            status @ (1 | 2) => {
                let record = Record::decode(reply.bytes(1)?)
                    .ok_or_else(|| reply.unexpected("an undecodable entry"))?;
                Ok(ReadOutcome::Hit(entry_of(
                    &record,
                    now,
                    status == 2,
                    reply.optional_string(2)?,
                )))
            }
            3 => Ok(ReadOutcome::LeaseGranted(
                String::from_utf8_lossy(reply.bytes(1)?).into_owned(),
            )),
            4 => Ok(ReadOutcome::LeaseHeldElsewhere),
            other => Err(reply.unexpected(&format!("status {other}"))),
        }
    }

    /// Stores a value. Fails with [`CacheError::TooLarge`] above `max_value_bytes` and with
    /// [`CacheError::PreconditionFailed`] when `if_match` is not the current lease or
    /// revalidate token of the key. A successful write releases the key's lease.
    pub fn set(
        &mut self,
        ns: &str,
        key: &str,
        value: &[u8],
        options: &SetOptions,
    ) -> Result<(), CacheError> {
        validate::segment("ns", ns)?;
        validate::segment("key", key)?;
        if value.len() as u64 > self.config.max_value_bytes {
            return Err(CacheError::TooLarge(self.config.max_value_bytes));
        }
        let ttl_ms = options
            .ttl_ms
            .unwrap_or(self.config.default_ttl_s.saturating_mul(1000));
        let swr_ms = options.swr_ms.unwrap_or(0);
        if swr_ms > MAX_TTL_MS {
            return Err(CacheError::invalid(
                "swr-ms",
                format!("must be 0-{MAX_TTL_MS}"),
            ));
        }
        // A zero TTL with a grace period is "always serve stale and revalidate": useful for
        // values that must be refreshed on every use without ever blocking a reader.
        if (ttl_ms == 0 && swr_ms == 0) || ttl_ms > MAX_TTL_MS {
            return Err(CacheError::invalid(
                "ttl-ms",
                format!("must be 1-{MAX_TTL_MS}, or 0 with a non-zero swr"),
            ));
        }
        let jitter_pct = options.jitter_pct.unwrap_or(self.config.ttl_jitter_pct);
        if jitter_pct > MAX_JITTER_PCT {
            return Err(CacheError::invalid(
                "jitter-pct",
                format!("must be 0-{MAX_JITTER_PCT}"),
            ));
        }
        let tags = validate::tags("tags", &options.tags)?;
        let content_type = options
            .content_type
            .as_deref()
            .unwrap_or(DEFAULT_CONTENT_TYPE);
        validate::content_type("content-type", content_type)?;
        if let Some(token) = &options.if_match {
            validate::token("if-match", token)?;
        }

        // Jitter only lengthens the TTL, so a caller's ttl is always a lower bound.
        let jittered_ttl_ms = ttl_ms + random_up_to(ttl_ms * u64::from(jitter_pct) / 100);
        let now = self.clock.now_ms();
        let fresh_until = now + jittered_ttl_ms;
        let stale_until = fresh_until + swr_ms;

        let ns_keys = NamespaceKeys::new(ns);
        let mut keys = Vec::with_capacity(5 + tags.len());
        keys.extend([
            ns_keys.entry(key),
            ns_keys.version(),
            ns_keys.index(),
            ns_keys.lease(key),
            ns_keys.claim(key),
        ]);
        keys.extend(tags.iter().map(|tag| ns_keys.tag(tag)));
        let header = record::header_tail(now, fresh_until, stale_until, content_type, &tags);
        let argv = [
            Arg::Int(to_i64(now)),
            Arg::Int(to_i64(stale_until)),
            Arg::Bytes(&header),
            Arg::Bytes(value),
            Arg::Bytes(options.if_match.as_deref().unwrap_or("").as_bytes()),
            Arg::Bytes(key.as_bytes()),
        ];
        let reply = scripts::SET.run(&mut self.redis, &keys, &argv)?;
        match Reply::new("set", &reply).int(0)? {
            1 => Ok(()),
            _ => Err(CacheError::PreconditionFailed(
                "the If-Match token is not the current lease or revalidate token of this key"
                    .into(),
            )),
        }
    }

    /// Removes a value; true when a live one existed.
    pub fn delete(&mut self, ns: &str, key: &str) -> Result<bool, CacheError> {
        validate::segment("ns", ns)?;
        validate::segment("key", key)?;
        let keys = NamespaceKeys::new(ns);
        let now = self.clock.now_ms();
        let reply = scripts::DELETE.run(
            &mut self.redis,
            &[
                keys.entry(key),
                keys.version(),
                keys.index(),
                keys.claim(key),
                keys.events(),
            ],
            &[
                Arg::Int(to_i64(now)),
                Arg::Bytes(key.as_bytes()),
                Arg::from(ns),
                Arg::Int(EVENTS_MAXLEN),
                Arg::Int(EVENTS_RETENTION_MS),
            ],
        )?;
        Ok(Reply::new("delete", &reply).int(0)? == 1)
    }

    /// Removes every value carrying any of `tags`; returns how many live ones were removed.
    /// Cost is O(members of those tag sets) — never a keyspace scan.
    pub fn invalidate_tags(&mut self, ns: &str, tags: &[String]) -> Result<u64, CacheError> {
        validate::segment("ns", ns)?;
        let tags = validate::tags("tags", tags)?;
        if tags.is_empty() {
            return Ok(0);
        }
        let ns_keys = NamespaceKeys::new(ns);
        let mut keys = vec![ns_keys.version(), ns_keys.index(), ns_keys.events()];
        keys.extend(tags.iter().map(|tag| ns_keys.tag(tag)));
        let now = self.clock.now_ms();
        let mut argv = vec![
            Arg::Int(to_i64(now)),
            Arg::from(ns),
            Arg::Int(EVENTS_MAXLEN),
            Arg::Int(EVENTS_RETENTION_MS),
        ];
        argv.extend(tags.iter().map(Arg::from));
        let reply = scripts::INVALIDATE_TAGS.run(&mut self.redis, &keys, &argv)?;
        Reply::new("invalidate_tags", &reply).count(0)
    }

    /// Removes every value of the namespace in O(1); returns how many were live.
    pub fn invalidate_all(&mut self, ns: &str) -> Result<u64, CacheError> {
        validate::segment("ns", ns)?;
        let keys = NamespaceKeys::new(ns);
        let now = self.clock.now_ms();
        let reply = scripts::INVALIDATE_ALL.run(
            &mut self.redis,
            &[keys.version(), keys.index(), keys.events()],
            &[
                Arg::Int(to_i64(now)),
                Arg::from(ns),
                Arg::Int(EVENTS_MAXLEN),
                Arg::Int(EVENTS_RETENTION_MS),
            ],
        )?;
        Reply::new("invalidate_all", &reply).count(0)
    }

    /// Hit/miss counters and the live key count.
    pub fn stats(&mut self, ns: &str) -> Result<Stats, CacheError> {
        validate::segment("ns", ns)?;
        let keys = NamespaceKeys::new(ns);
        let now = self.clock.now_ms();
        let reply = scripts::STATS.run(
            &mut self.redis,
            &[keys.stats(), keys.index()],
            &[Arg::Int(to_i64(now))],
        )?;
        let reply = Reply::new("stats", &reply);
        Ok(Stats {
            hits: reply.count(0)?,
            misses: reply.count(1)?,
            stale_hits: reply.count(2)?,
            keys: reply.count(3)?,
        })
    }
}

/// The caller's view of a stored entry read at `now`.
fn entry_of(record: &Record<'_>, now: u64, stale: bool, revalidate_token: Option<String>) -> Entry {
    Entry {
        value: record.body.to_vec(),
        content_type: record.content_type.to_string(),
        age_ms: now.saturating_sub(record.stored_ms),
        stale,
        revalidate_token,
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Typed access to a flat script reply; a shape we did not write is reported as Redis
/// misbehaving (503), never a panic.
struct Reply<'a> {
    script: &'static str,
    values: &'a [Value],
}

impl<'a> Reply<'a> {
    fn new(script: &'static str, values: &'a [Value]) -> Self {
        Self { script, values }
    }

    fn unexpected(&self, what: &str) -> CacheError {
        CacheError::Unavailable(format!(
            "unexpected reply from script {}: {what} in {:?}",
            self.script,
            self.values.iter().take(6).collect::<Vec<_>>()
        ))
    }

    fn int(&self, index: usize) -> Result<i64, CacheError> {
        match self.values.get(index) {
            Some(Value::Int(value)) => Ok(*value),
            Some(Value::Bytes(bytes)) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| self.unexpected(&format!("non-integer at {index}"))),
            _ => Err(self.unexpected(&format!("no integer at {index}"))),
        }
    }

    fn count(&self, index: usize) -> Result<u64, CacheError> {
        Ok(u64::try_from(self.int(index)?).unwrap_or(0))
    }

    fn bytes(&self, index: usize) -> Result<&'a [u8], CacheError> {
        match self.values.get(index) {
            Some(Value::Bytes(bytes)) => Ok(bytes),
            Some(Value::Status(text)) => Ok(text.as_bytes()),
            _ => Err(self.unexpected(&format!("no bytes at {index}"))),
        }
    }

    fn optional_string(&self, index: usize) -> Result<Option<String>, CacheError> {
        match self.values.get(index) {
            // A trailing nil may be dropped by an executor that trims arrays.
            None | Some(Value::Nil) => Ok(None),
            Some(_) => Ok(Some(
                String::from_utf8_lossy(self.bytes(index)?).into_owned(),
            )),
        }
    }
}
