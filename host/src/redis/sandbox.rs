//! The key-namespace sandbox: pure functions that rewrite a guest's command so every key (and
//! pub/sub channel) it names lives under the component's prefix, and that strip the prefix
//! again from replies that carry key names.
//!
//! The table is default-deny: a command that is not listed here is refused, because we cannot
//! know where its keys are. Commands that would escape the namespace (`KEYS`, `FLUSHALL`,
//! `RANDOMKEY`, ...) or change the state of the shared connection (`SELECT`, `MULTI`,
//! `SUBSCRIBE`, ...) are refused with a reason.
//!
//! Everything here is synchronous and allocation-light; the I/O lives in `pool.rs`.

use std::time::Duration;

/// Why a command was refused. The text becomes the guest-visible `other("denied: ...")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied(pub(crate) String);

impl Denied {
    fn new(msg: impl Into<String>) -> Self {
        Denied(msg.into())
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a reply must be rewritten before the guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyRewrite {
    /// The reply holds no key names.
    None,
    /// `[key, ...]` (BLPOP, BRPOP, BZPOPMIN/MAX, LMPOP, BLMPOP, ZMPOP, BZMPOP): strip the first
    /// element.
    StripFirst,
    /// `[[stream, entries], ...]` or a map `stream -> entries` (XREAD, XREADGROUP).
    Streams,
    /// `[cursor, [key, ...]]` (SCAN).
    Scan,
}

/// A command after the sandbox rewrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rewritten {
    /// The arguments to send (command name excluded).
    pub(crate) args: Vec<Vec<u8>>,
    /// How to rewrite the reply.
    pub(crate) reply: ReplyRewrite,
    /// Run it on the host's own connection: the component's Redis user may not run it (its
    /// ACL denies `SCAN`, which a script could otherwise use to list every key), but this
    /// rewrite confines it.
    pub(crate) on_host: bool,
}

/// Where a command's keys are.
#[derive(Debug, Clone, Copy)]
enum Keys {
    /// No keys (PING, ECHO, WAIT, ...).
    None,
    /// The first argument.
    First,
    /// The first two arguments (RENAME, LMOVE, SMOVE, ...).
    FirstTwo,
    /// Every argument (DEL, EXISTS, MGET, ...).
    All,
    /// Every argument from this index on (BITOP op dest key...).
    AllFrom(usize),
    /// Every argument but the last, which is a timeout (BLPOP, BZPOPMIN, ...).
    AllButLast,
    /// key value key value ... (MSET, MSETNX).
    Alternating,
    /// A `numkeys` argument at `at`, followed by that many keys; with `dest`, argument 0 is a
    /// key too (ZUNIONSTORE dest numkeys key...).
    Numbered { at: usize, dest: bool },
    /// A special parser.
    Special(Special),
    /// Refused, with the reason.
    Deny(&'static str),
}

#[derive(Debug, Clone, Copy)]
enum Special {
    Scan,
    XRead,
    Sort {
        store_allowed: bool,
    },
    GeoRadius {
        fixed: usize,
    },
    Copy,
    /// `<subcommand> key ...` where only the listed subcommands are allowed (`HELP` needs no
    /// key).
    SubcommandKey(&'static [&'static str]),
    /// `SCRIPT LOAD|EXISTS` only.
    Script,
}

const STATE: &str = "it changes the state of the connection shared by every component";
const ADMIN: &str = "server administration is not available to components";
const ESCAPES: &str = "it reaches keys outside the component's namespace";

/// The command table. Names are upper case.
fn lookup(command: &str) -> Option<Keys> {
    use Keys::*;
    let keys = match command {
        // Keyless and harmless.
        "PING" | "ECHO" | "TIME" | "WAIT" | "WAITAOF" => None,

        // Single key first.
        "GET"
        | "SET"
        | "SETNX"
        | "SETEX"
        | "PSETEX"
        | "GETSET"
        | "GETDEL"
        | "GETEX"
        | "APPEND"
        | "STRLEN"
        | "INCR"
        | "DECR"
        | "INCRBY"
        | "DECRBY"
        | "INCRBYFLOAT"
        | "GETRANGE"
        | "SETRANGE"
        | "SUBSTR"
        | "GETBIT"
        | "SETBIT"
        | "BITCOUNT"
        | "BITPOS"
        | "BITFIELD"
        | "BITFIELD_RO"
        | "EXPIRE"
        | "PEXPIRE"
        | "EXPIREAT"
        | "PEXPIREAT"
        | "EXPIRETIME"
        | "PEXPIRETIME"
        | "TTL"
        | "PTTL"
        | "PERSIST"
        | "TYPE"
        | "DUMP"
        | "HSET"
        | "HSETNX"
        | "HGET"
        | "HMSET"
        | "HMGET"
        | "HGETALL"
        | "HDEL"
        | "HEXISTS"
        | "HINCRBY"
        | "HINCRBYFLOAT"
        | "HKEYS"
        | "HVALS"
        | "HLEN"
        | "HSTRLEN"
        | "HRANDFIELD"
        | "HSCAN"
        | "HEXPIRE"
        | "HPEXPIRE"
        | "HEXPIREAT"
        | "HPEXPIREAT"
        | "HTTL"
        | "HPTTL"
        | "HEXPIRETIME"
        | "HPEXPIRETIME"
        | "HPERSIST"
        | "HGETDEL"
        | "HGETEX"
        | "HSETEX"
        | "LPUSH"
        | "RPUSH"
        | "LPUSHX"
        | "RPUSHX"
        | "LPOP"
        | "RPOP"
        | "LLEN"
        | "LRANGE"
        | "LINDEX"
        | "LSET"
        | "LINSERT"
        | "LREM"
        | "LTRIM"
        | "LPOS"
        | "SADD"
        | "SREM"
        | "SMEMBERS"
        | "SISMEMBER"
        | "SMISMEMBER"
        | "SCARD"
        | "SPOP"
        | "SRANDMEMBER"
        | "SSCAN"
        | "ZADD"
        | "ZREM"
        | "ZSCORE"
        | "ZMSCORE"
        | "ZINCRBY"
        | "ZCARD"
        | "ZCOUNT"
        | "ZLEXCOUNT"
        | "ZRANGE"
        | "ZRANGEBYSCORE"
        | "ZRANGEBYLEX"
        | "ZREVRANGE"
        | "ZREVRANGEBYSCORE"
        | "ZREVRANGEBYLEX"
        | "ZRANK"
        | "ZREVRANK"
        | "ZREMRANGEBYRANK"
        | "ZREMRANGEBYSCORE"
        | "ZREMRANGEBYLEX"
        | "ZPOPMIN"
        | "ZPOPMAX"
        | "ZRANDMEMBER"
        | "ZSCAN"
        | "PFADD"
        | "XADD"
        | "XLEN"
        | "XRANGE"
        | "XREVRANGE"
        | "XDEL"
        | "XTRIM"
        | "XACK"
        | "XCLAIM"
        | "XAUTOCLAIM"
        | "XPENDING"
        | "XSETID"
        | "GEOADD"
        | "GEODIST"
        | "GEOHASH"
        | "GEOPOS"
        | "GEOSEARCH"
        | "GEORADIUS_RO"
        | "GEORADIUSBYMEMBER_RO" => First,
        // Channels are namespaced like keys.
        "PUBLISH" | "SPUBLISH" => First,

        "RENAME" | "RENAMENX" | "LMOVE" | "BLMOVE" | "RPOPLPUSH" | "BRPOPLPUSH" | "SMOVE"
        | "LCS" | "GEOSEARCHSTORE" | "ZRANGESTORE" => FirstTwo,
        "COPY" => Special(self::Special::Copy),

        "DEL" | "UNLINK" | "EXISTS" | "TOUCH" | "MGET" | "PFCOUNT" | "PFMERGE" | "SINTER"
        | "SUNION" | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => All,
        "BITOP" => AllFrom(1),
        "BLPOP" | "BRPOP" | "BZPOPMIN" | "BZPOPMAX" => AllButLast,
        "MSET" | "MSETNX" => Alternating,

        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" | "BLMPOP"
        | "BZMPOP" => Numbered { at: 1, dest: false },
        "ZUNION" | "ZINTER" | "ZDIFF" | "ZINTERCARD" | "SINTERCARD" | "LMPOP" | "ZMPOP" => {
            Numbered { at: 0, dest: false }
        }
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" => Numbered { at: 1, dest: true },

        "SCAN" => Special(self::Special::Scan),
        "XREAD" | "XREADGROUP" => Special(self::Special::XRead),
        "SORT" => Special(self::Special::Sort {
            store_allowed: true,
        }),
        "SORT_RO" => Special(self::Special::Sort {
            store_allowed: false,
        }),
        "GEORADIUS" => Special(self::Special::GeoRadius { fixed: 5 }),
        "GEORADIUSBYMEMBER" => Special(self::Special::GeoRadius { fixed: 4 }),
        "OBJECT" => Special(self::Special::SubcommandKey(&[
            "ENCODING", "FREQ", "IDLETIME", "REFCOUNT",
        ])),
        "MEMORY" => Special(self::Special::SubcommandKey(&["USAGE"])),
        "XINFO" => Special(self::Special::SubcommandKey(&[
            "STREAM",
            "GROUPS",
            "CONSUMERS",
        ])),
        "XGROUP" => Special(self::Special::SubcommandKey(&[
            "CREATE",
            "SETID",
            "DESTROY",
            "CREATECONSUMER",
            "DELCONSUMER",
        ])),
        "SCRIPT" => Special(self::Special::Script),

        // Escaping the namespace.
        "KEYS" => {
            Deny("KEYS lists every component's keys; use SCAN, which is confined to the namespace")
        }
        "RANDOMKEY" | "DBSIZE" | "MOVE" | "MIGRATE" | "SWAPDB" | "PUBSUB" => Deny(ESCAPES),
        // A crafted payload can crash a server left at `sanitize-dump-payload no`.
        "RESTORE" | "RESTORE-ASKING" => {
            Deny("a crafted DUMP payload can crash the server; write the value with SET/HSET/...")
        }
        "FUNCTION" => Deny("functions are global to the server; load them as the operator"),
        // Administration.
        "FLUSHALL" | "FLUSHDB" | "CONFIG" | "DEBUG" | "SHUTDOWN" | "MODULE" | "ACL"
        | "REPLICAOF" | "SLAVEOF" | "CLUSTER" | "SAVE" | "BGSAVE" | "BGREWRITEAOF" | "FAILOVER"
        | "INFO" | "LASTSAVE" | "LATENCY" | "SLOWLOG" | "ROLE" | "COMMAND" | "LOLWUT" => {
            Deny(ADMIN)
        }
        _ => return connection_state_denial(command).map(Deny),
    };
    Some(keys)
}

/// Commands that would change the state of the shared, multiplexed connection (and so affect
/// every other component's commands on it). Refused whether or not the sandbox is on.
fn connection_state_denial(command: &str) -> Option<&'static str> {
    match command {
        "SELECT" | "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
        | "SUNSUBSCRIBE" | "MONITOR" | "SYNC" | "PSYNC" | "QUIT" | "RESET" | "AUTH" | "HELLO"
        | "CLIENT" | "READONLY" | "READWRITE" => Some(STATE),
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => Some(
            "transactions would interleave with other components' commands on the shared \
             connection; use EVAL for atomic multi-key updates",
        ),
        _ => None,
    }
}

/// The check that applies with the sandbox off: only commands that would break the shared
/// connection are refused.
pub(crate) fn check_unsandboxed(command: &str) -> Result<(), Denied> {
    match connection_state_denial(command) {
        Some(reason) => Err(Denied::new(format!("{command}: {reason}"))),
        None => Ok(()),
    }
}

/// Validates a key prefix: non-empty, and without `{`/`}`, so the guest's own `{hash-tag}`
/// still decides the cluster slot.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("the Redis key prefix must not be empty".into());
    }
    if prefix.contains(['{', '}']) {
        return Err(format!(
            "the Redis key prefix `{prefix}` must not contain `{{` or `}}` (they would change \
             the cluster hash slot of every key)"
        ));
    }
    // The prefix becomes the component's ACL key pattern (`~<prefix>*`) and its SCAN MATCH.
    if let Some(c) = prefix
        .chars()
        .find(|c| matches!(c, '*' | '?' | '[' | ']' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "the Redis key prefix `{prefix}` must not contain {c:?} (glob characters and \
             spaces would widen the component's Redis ACL key pattern)"
        ));
    }
    Ok(())
}

fn prefixed(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + key.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(key);
    out
}

fn prefix_in_place(prefix: &[u8], arg: &mut Vec<u8>) {
    arg.splice(0..0, prefix.iter().copied());
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

/// Escapes glob metacharacters so the prefix matches itself literally in `SCAN MATCH`.
fn glob_escape(prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 4);
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn parse_count(arg: &[u8], what: &str) -> Result<usize, Denied> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .ok_or_else(|| Denied::new(format!("invalid {what}")))
}

/// Rewrites `command args...` for the namespace `prefix`. `command` may be any case.
pub(crate) fn rewrite(
    prefix: &[u8],
    command: &str,
    mut args: Vec<Vec<u8>>,
) -> Result<Rewritten, Denied> {
    let name = command.to_ascii_uppercase();
    let Some(keys) = lookup(&name) else {
        return Err(Denied::new(format!(
            "{name} is not supported by the key-namespace sandbox"
        )));
    };
    let mut reply = ReplyRewrite::None;
    let on_host = name == "SCAN";
    let n = args.len();
    match keys {
        Keys::None => {}
        Keys::First => {
            if let Some(a) = args.first_mut() {
                prefix_in_place(prefix, a);
            }
        }
        Keys::FirstTwo => args
            .iter_mut()
            .take(2)
            .for_each(|a| prefix_in_place(prefix, a)),
        Keys::All => args.iter_mut().for_each(|a| prefix_in_place(prefix, a)),
        Keys::AllFrom(i) => args
            .iter_mut()
            .skip(i)
            .for_each(|a| prefix_in_place(prefix, a)),
        Keys::AllButLast => {
            args.iter_mut()
                .take(n.saturating_sub(1))
                .for_each(|a| prefix_in_place(prefix, a));
            reply = ReplyRewrite::StripFirst;
        }
        Keys::Alternating => args
            .iter_mut()
            .step_by(2)
            .for_each(|a| prefix_in_place(prefix, a)),
        Keys::Numbered { at, dest } => {
            if n > at {
                let count = parse_count(&args[at], "numkeys")?;
                if count > n - at - 1 {
                    return Err(Denied::new(format!(
                        "{name}: numkeys ({count}) exceeds the number of arguments"
                    )));
                }
                args[at + 1..at + 1 + count]
                    .iter_mut()
                    .for_each(|a| prefix_in_place(prefix, a));
                if dest {
                    prefix_in_place(prefix, &mut args[0]);
                }
            }
            if matches!(name.as_str(), "LMPOP" | "BLMPOP" | "ZMPOP" | "BZMPOP") {
                reply = ReplyRewrite::StripFirst;
            }
        }
        Keys::Special(special) => {
            reply = rewrite_special(prefix, &name, special, &mut args)?;
        }
        Keys::Deny(reason) => return Err(Denied::new(format!("{name}: {reason}"))),
    }
    Ok(Rewritten {
        args,
        reply,
        on_host,
    })
}

fn rewrite_special(
    prefix: &[u8],
    name: &str,
    special: Special,
    args: &mut Vec<Vec<u8>>,
) -> Result<ReplyRewrite, Denied> {
    match special {
        Special::Scan => {
            // SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: force the match into the prefix.
            // Without a cursor the forced `MATCH` would be read as one.
            if args.is_empty() {
                return Err(Denied::new("SCAN: missing cursor"));
            }
            let escaped = glob_escape(prefix);
            let mut i = 1;
            let mut had_match = false;
            while i < args.len() {
                match upper(&args[i]).as_str() {
                    "MATCH" if i + 1 < args.len() => {
                        let pattern = std::mem::take(&mut args[i + 1]);
                        args[i + 1] = prefixed(&escaped, &pattern);
                        had_match = true;
                        i += 2;
                    }
                    "COUNT" | "TYPE" if i + 1 < args.len() => i += 2,
                    other => {
                        return Err(Denied::new(format!("SCAN: unsupported option {other}")));
                    }
                }
            }
            if !had_match {
                args.push(b"MATCH".to_vec());
                args.push(prefixed(&escaped, b"*"));
            }
            Ok(ReplyRewrite::Scan)
        }
        Special::XRead => {
            // [GROUP g c] [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...
            let mut i = 0;
            while i < args.len() {
                match upper(&args[i]).as_str() {
                    "STREAMS" => {
                        let rest = args.len() - i - 1;
                        if rest == 0 || !rest.is_multiple_of(2) {
                            return Err(Denied::new(format!(
                                "{name}: STREAMS needs as many ids as keys"
                            )));
                        }
                        args[i + 1..i + 1 + rest / 2]
                            .iter_mut()
                            .for_each(|a| prefix_in_place(prefix, a));
                        return Ok(ReplyRewrite::Streams);
                    }
                    "COUNT" | "BLOCK" | "CLAIM" => i += 2,
                    "GROUP" => i += 3,
                    "NOACK" => i += 1,
                    other => {
                        return Err(Denied::new(format!("{name}: unsupported option {other}")));
                    }
                }
            }
            Err(Denied::new(format!("{name}: missing STREAMS")))
        }
        Special::Sort { store_allowed } => {
            // SORT key [BY pattern] [LIMIT o c] [GET pattern ...] [ASC|DESC] [ALPHA]
            // [STORE dest]. BY/GET patterns name other keys (`*` is replaced by the element),
            // so prefixing the pattern keeps every key it can reach inside the namespace;
            // `GET #` is the element itself.
            if args.is_empty() {
                return Ok(ReplyRewrite::None);
            }
            prefix_in_place(prefix, &mut args[0]);
            let mut i = 1;
            while i < args.len() {
                let opt = upper(&args[i]);
                match opt.as_str() {
                    "BY" | "GET" if i + 1 < args.len() => {
                        if args[i + 1] != b"#" {
                            prefix_in_place(prefix, &mut args[i + 1]);
                        }
                        i += 2;
                    }
                    "STORE" if store_allowed && i + 1 < args.len() => {
                        prefix_in_place(prefix, &mut args[i + 1]);
                        i += 2;
                    }
                    "LIMIT" => i += 3,
                    "ASC" | "DESC" | "ALPHA" => i += 1,
                    other => {
                        return Err(Denied::new(format!("{name}: unsupported option {other}")));
                    }
                }
            }
            Ok(ReplyRewrite::None)
        }
        Special::GeoRadius { fixed } => {
            if let Some(a) = args.first_mut() {
                prefix_in_place(prefix, a);
            }
            let mut i = fixed;
            while i < args.len() {
                match upper(&args[i]).as_str() {
                    "STORE" | "STOREDIST" if i + 1 < args.len() => {
                        prefix_in_place(prefix, &mut args[i + 1]);
                        i += 2;
                    }
                    "COUNT" => i += 2,
                    "WITHCOORD" | "WITHDIST" | "WITHHASH" | "ANY" | "ASC" | "DESC" => i += 1,
                    other => {
                        return Err(Denied::new(format!("{name}: unsupported option {other}")));
                    }
                }
            }
            Ok(ReplyRewrite::None)
        }
        Special::Copy => {
            // COPY src dst [DB n] [REPLACE]: DB would write into another database.
            if args.iter().skip(2).any(|a| upper(a) == "DB") {
                return Err(Denied::new(format!("COPY ... DB: {ESCAPES}")));
            }
            args.iter_mut()
                .take(2)
                .for_each(|a| prefix_in_place(prefix, a));
            Ok(ReplyRewrite::None)
        }
        Special::SubcommandKey(allowed) => {
            let Some(sub) = args.first().map(|a| upper(a)) else {
                return Ok(ReplyRewrite::None);
            };
            if sub == "HELP" {
                return Ok(ReplyRewrite::None);
            }
            if !allowed.contains(&sub.as_str()) {
                return Err(Denied::new(format!(
                    "{name} {sub} is not available to components"
                )));
            }
            if let Some(key) = args.get_mut(1) {
                prefix_in_place(prefix, key);
            }
            Ok(ReplyRewrite::None)
        }
        Special::Script => match args.first().map(|a| upper(a)).as_deref() {
            Some("LOAD" | "EXISTS") => Ok(ReplyRewrite::None),
            Some(sub) => Err(Denied::new(format!("SCRIPT {sub}: {ADMIN}"))),
            None => Ok(ReplyRewrite::None),
        },
    }
}

/// What one command may do to the server, whether or not the key sandbox is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest command (the sum of its argument bytes), and the largest string that
    /// `SETRANGE`, `SETBIT` and `BITFIELD` may address: one `SETRANGE k 536870911 x`
    /// otherwise allocates 512 MB on the server.
    pub(crate) max_write_bytes: usize,
    /// Longest `WAIT`/`WAITAOF` timeout; `0` (forever) becomes this too, so a `WAIT 1 0`
    /// without a replica cannot hold a blocking connection until the request times out.
    pub(crate) max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_write_bytes: 8 * 1024 * 1024,
            max_wait: Duration::from_secs(1),
        }
    }
}

fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.trim().parse().ok()
}

/// The bit width of a `BITFIELD` type (`i8`, `u16`, ...).
fn bitfield_width(arg: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(arg).ok()?;
    let digits = text.strip_prefix(['i', 'I', 'u', 'U'])?;
    digits.parse().ok()
}

/// Checks `name args...` (upper-case name) against `limits`, and clamps `WAIT`/`WAITAOF`
/// timeouts in place. Offsets that do not parse are left to Redis, which refuses them.
pub(crate) fn enforce_limits(
    name: &str,
    args: &mut [Vec<u8>],
    limits: &Limits,
) -> Result<(), Denied> {
    let max = limits.max_write_bytes as u64;
    let size: u64 = args.iter().map(|a| a.len() as u64).sum();
    if size > max {
        return Err(Denied::new(format!(
            "{name}: the command carries {size} bytes, over the limit of {max} bytes"
        )));
    }
    let too_far = |end: u64| {
        Denied::new(format!(
            "{name}: the offset reaches byte {end}, over the limit of {max} bytes per value"
        ))
    };
    match name {
        "SETRANGE" => {
            if let (Some(offset), Some(value)) =
                (args.get(1).and_then(|a| parse_i64(a)), args.get(2))
                && offset >= 0
            {
                let end = offset as u64 + value.len() as u64;
                if end > max {
                    return Err(too_far(end));
                }
            }
        }
        "SETBIT" => {
            if let Some(bit) = args.get(1).and_then(|a| parse_i64(a))
                && bit >= 0
                && bit as u64 / 8 + 1 > max
            {
                return Err(too_far(bit as u64 / 8 + 1));
            }
        }
        "BITFIELD" => {
            // GET|SET|INCRBY type offset [value]; `#n` offsets count in units of the type.
            let mut i = 1;
            while i < args.len() {
                match upper(&args[i]).as_str() {
                    op @ ("GET" | "SET" | "INCRBY") => {
                        let (Some(width), Some(offset)) = (
                            args.get(i + 1).and_then(|a| bitfield_width(a)),
                            args.get(i + 2),
                        ) else {
                            break;
                        };
                        let bit = match offset.strip_prefix(b"#") {
                            Some(n) => parse_i64(n).map(|n| n.saturating_mul(width as i64)),
                            None => parse_i64(offset),
                        };
                        if op != "GET"
                            && let Some(bit) = bit
                            && bit >= 0
                        {
                            let end = (bit as u64).saturating_add(width).div_ceil(8);
                            if end > max {
                                return Err(too_far(end));
                            }
                        }
                        i += if op == "GET" { 3 } else { 4 };
                    }
                    "OVERFLOW" => i += 2,
                    _ => break,
                }
            }
        }
        "WAIT" | "WAITAOF" => {
            let at = if name == "WAIT" { 1 } else { 2 };
            let cap = limits.max_wait.as_millis().max(1) as i64;
            if let Some(arg) = args.get_mut(at)
                && let Some(ms) = parse_i64(arg)
                && (ms == 0 || ms > cap)
            {
                *arg = cap.to_string().into_bytes();
            }
        }
        _ => {}
    }
    Ok(())
}

/// A read-only view of another component's keys: keys matching `pattern` (a glob of
/// literal bytes and `*`), named in a stream read, resolve to the owner's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadGrant {
    /// The key pattern, as the reader names the keys (without any prefix).
    pub(crate) pattern: Vec<u8>,
    /// The owner's key prefix (empty when the owner is not sandboxed).
    pub(crate) owner_prefix: Vec<u8>,
}

/// Checks a grant pattern: non-empty, literal bytes and `*` only (no other glob characters,
/// spaces or control characters: it becomes a Redis ACL key pattern as it is).
pub(crate) fn validate_grant_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("a read grant's `keys` must not be empty".into());
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| matches!(c, '?' | '[' | ']' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "a read grant's `keys` = `{pattern}` must not contain {c:?} (only literal \
             characters and `*`)"
        ));
    }
    Ok(())
}

/// Whether `key` matches `pattern`, where `*` stands for any run of bytes without `{` or
/// `}`: stricter than Redis's glob, so a grant for `q{*}:ev` never reaches a key whose own
/// text merely ends in `}:ev`.
pub(crate) fn grant_matches(pattern: &[u8], key: &[u8]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((b'*', rest)) => {
            let mut i = 0;
            loop {
                if grant_matches(rest, &key[i..]) {
                    return true;
                }
                match key.get(i) {
                    Some(b'{' | b'}') | None => return false,
                    Some(_) => i += 1,
                }
            }
        }
        Some((&c, rest)) => key.first() == Some(&c) && grant_matches(rest, &key[1..]),
    }
}

/// The reads that may reach granted keys, and where their keys are:
/// `XRANGE`/`XREVRANGE`/`XLEN key`, `XINFO STREAM key`, `XREAD ... STREAMS key... id...`,
/// and the declared keys of read-only scripts (`EVAL_RO`/`EVALSHA_RO`, which Redis refuses
/// to let write anything). Every other command keeps every key in the component's own
/// namespace.
fn granted_key_positions(command: &str, args: &[Vec<u8>]) -> Vec<usize> {
    match command {
        "EVAL_RO" | "EVALSHA_RO" if args.len() >= 2 => {
            let n = std::str::from_utf8(&args[1])
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
                .min(args.len() - 2);
            (2..2 + n).collect()
        }
        "XRANGE" | "XREVRANGE" | "XLEN" if !args.is_empty() => vec![0],
        "XINFO" if args.len() >= 2 && upper(&args[0]) == "STREAM" => vec![1],
        "XREAD" => match args.iter().position(|a| upper(a) == "STREAMS") {
            Some(at) => {
                let n = (args.len() - at - 1) / 2;
                (at + 1..at + 1 + n).collect()
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// After [`rewrite`] put `own` in front of every key: moves the keys of a stream read that
/// match a grant to the owner's namespace. Returns whether any key moved.
pub(crate) fn apply_read_grants(
    own: &[u8],
    grants: &[ReadGrant],
    command: &str,
    args: &mut [Vec<u8>],
) -> bool {
    let mut moved = false;
    for at in granted_key_positions(command, args) {
        let Some(key) = args[at].strip_prefix(own) else {
            continue;
        };
        if let Some(grant) = grants.iter().find(|g| grant_matches(&g.pattern, key)) {
            let mut owned = grant.owner_prefix.clone();
            owned.extend_from_slice(key);
            args[at] = owned;
            moved = true;
        }
    }
    moved
}

/// Strips the owners' prefixes from the stream names of an `XREAD` reply whose keys
/// [`apply_read_grants`] moved (the component's own prefix was stripped already, so only
/// names that still carry an owner's prefix and match its grant are touched).
pub(crate) fn strip_granted_streams(grants: &[ReadGrant], value: &mut redis::Value) {
    let strip = |name: &mut redis::Value| {
        let redis::Value::BulkString(b) = name else {
            return;
        };
        if let Some(grant) = grants.iter().find(|g| {
            b.strip_prefix(g.owner_prefix.as_slice())
                .is_some_and(|key| grant_matches(&g.pattern, key))
        }) {
            b.drain(..grant.owner_prefix.len());
        }
    };
    match value {
        redis::Value::Array(streams) => {
            for stream in streams {
                if let redis::Value::Array(pair) = stream
                    && let Some(name) = pair.first_mut()
                {
                    strip(name);
                }
            }
        }
        redis::Value::Map(pairs) => pairs.iter_mut().for_each(|(k, _)| strip(k)),
        _ => {}
    }
}

/// Strips `prefix` from one key name (left unchanged if it does not carry it).
fn strip_key(prefix: &[u8], value: &mut redis::Value) {
    match value {
        redis::Value::BulkString(b) if b.starts_with(prefix) => {
            b.drain(..prefix.len());
        }
        redis::Value::SimpleString(s) if s.as_bytes().starts_with(prefix) => {
            s.drain(..prefix.len());
        }
        _ => {}
    }
}

/// Strips the prefix from the key names a reply carries, as `how` says.
pub(crate) fn strip_reply(prefix: &[u8], how: ReplyRewrite, value: &mut redis::Value) {
    use redis::Value;
    match how {
        ReplyRewrite::None => {}
        ReplyRewrite::StripFirst => {
            if let Value::Array(items) = value
                && let Some(first) = items.first_mut()
            {
                strip_key(prefix, first);
            }
        }
        ReplyRewrite::Streams => match value {
            Value::Array(streams) => {
                for stream in streams {
                    if let Value::Array(pair) = stream
                        && let Some(name) = pair.first_mut()
                    {
                        strip_key(prefix, name);
                    }
                }
            }
            Value::Map(pairs) => pairs.iter_mut().for_each(|(k, _)| strip_key(prefix, k)),
            _ => {}
        },
        ReplyRewrite::Scan => {
            if let Value::Array(parts) = value
                && let Some(Value::Array(keys)) = parts.get_mut(1)
            {
                keys.iter_mut().for_each(|k| strip_key(prefix, k));
            }
        }
    }
}

/// Whether (and how long) a command blocks the connection it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// An ordinary command: runs on the shared multiplexed connection.
    No,
    /// Blocks until data arrives (timeout 0).
    Forever,
    /// Blocks at most this long.
    For(Duration),
}

fn seconds(arg: Option<&Vec<u8>>) -> Blocking {
    let secs = arg
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.trim().parse::<f64>().ok());
    match secs {
        Some(s) if s > 0.0 && s.is_finite() => Blocking::For(Duration::from_secs_f64(s)),
        // 0 (forever) or unparsable: Redis decides; keep it off the shared connection.
        _ => Blocking::Forever,
    }
}

fn millis(arg: Option<&Vec<u8>>) -> Blocking {
    let ms = arg
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    match ms {
        Some(ms) if ms > 0 => Blocking::For(Duration::from_millis(ms)),
        _ => Blocking::Forever,
    }
}

/// Classifies a command (upper-case name) as blocking or not, with its block time. Works on
/// the original or the rewritten arguments (timeouts are never prefixed).
pub(crate) fn blocking(command: &str, args: &[Vec<u8>]) -> Blocking {
    match command {
        "BLPOP" | "BRPOP" | "BZPOPMIN" | "BZPOPMAX" | "BRPOPLPUSH" | "BLMOVE" => {
            seconds(args.last())
        }
        "BLMPOP" | "BZMPOP" => seconds(args.first()),
        "WAIT" => millis(args.get(1)),
        "WAITAOF" => millis(args.get(2)),
        "XREAD" | "XREADGROUP" => {
            let mut i = 0;
            while i < args.len() {
                match upper(&args[i]).as_str() {
                    "BLOCK" => return millis(args.get(i + 1)),
                    "STREAMS" => return Blocking::No,
                    "COUNT" | "CLAIM" => i += 2,
                    "GROUP" => i += 3,
                    _ => i += 1,
                }
            }
            Blocking::No
        }
        _ => Blocking::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    const P: &[u8] = b"app:";

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn rw(cmd: &str, list: &[&str]) -> Result<Vec<String>, Denied> {
        rewrite(P, cmd, args(list)).map(|r| {
            r.args
                .into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        })
    }

    fn ok(cmd: &str, list: &[&str]) -> Vec<String> {
        rw(cmd, list).unwrap_or_else(|e| panic!("{cmd} denied: {e}"))
    }

    fn denied(cmd: &str, list: &[&str]) -> String {
        match rw(cmd, list) {
            Err(Denied(msg)) => msg,
            Ok(a) => panic!("{cmd} allowed: {a:?}"),
        }
    }

    #[test]
    fn first_key_commands() {
        assert_eq!(ok("get", &["k"]), ["app:k"]);
        assert_eq!(
            ok("SET", &["k", "v", "EX", "10"]),
            ["app:k", "v", "EX", "10"]
        );
        assert_eq!(ok("hset", &["h", "f", "v"]), ["app:h", "f", "v"]);
        assert_eq!(ok("XADD", &["s", "*", "f", "v"]), ["app:s", "*", "f", "v"]);
        assert_eq!(ok("GET", &[]), Vec::<String>::new());
    }

    #[test]
    fn publish_channels_are_namespaced() {
        assert_eq!(ok("PUBLISH", &["news", "hi"]), ["app:news", "hi"]);
    }

    #[test]
    fn keyless_commands_pass_through() {
        assert_eq!(ok("PING", &["x"]), ["x"]);
        assert_eq!(ok("ECHO", &["x"]), ["x"]);
        assert_eq!(ok("TIME", &[]), Vec::<String>::new());
    }

    #[test]
    fn all_args_commands() {
        for cmd in [
            "DEL",
            "EXISTS",
            "UNLINK",
            "TOUCH",
            "MGET",
            "SINTERSTORE",
            "PFMERGE",
        ] {
            assert_eq!(ok(cmd, &["a", "b"]), ["app:a", "app:b"], "{cmd}");
        }
    }

    #[test]
    fn alternating_commands() {
        assert_eq!(
            ok("MSET", &["a", "1", "b", "2"]),
            ["app:a", "1", "app:b", "2"]
        );
        assert_eq!(ok("msetnx", &["a", "1"]), ["app:a", "1"]);
    }

    #[test]
    fn two_key_commands() {
        for cmd in [
            "RENAME",
            "RENAMENX",
            "LMOVE",
            "RPOPLPUSH",
            "SMOVE",
            "COPY",
            "LCS",
            "ZRANGESTORE",
        ] {
            let out = ok(cmd, &["a", "b", "x"]);
            assert_eq!(out[..2], ["app:a", "app:b"], "{cmd}");
            assert_eq!(out[2], "x", "{cmd}");
        }
        assert_eq!(
            ok("BLMOVE", &["a", "b", "LEFT", "RIGHT", "1"]),
            ["app:a", "app:b", "LEFT", "RIGHT", "1"]
        );
        assert_eq!(ok("BRPOPLPUSH", &["a", "b", "0"]), ["app:a", "app:b", "0"]);
        assert!(denied("COPY", &["a", "b", "DB", "2"]).contains("COPY"));
        assert_eq!(ok("BITOP", &["AND", "d", "a"]), ["AND", "app:d", "app:a"]);
    }

    #[test]
    fn numkeys_commands() {
        assert_eq!(
            ok("EVAL", &["return 1", "2", "a", "b", "argv"]),
            ["return 1", "2", "app:a", "app:b", "argv"]
        );
        assert_eq!(ok("EVALSHA", &["abc", "0", "x"]), ["abc", "0", "x"]);
        assert_eq!(ok("FCALL", &["f", "1", "k", "a"]), ["f", "1", "app:k", "a"]);
        assert_eq!(
            ok("ZUNIONSTORE", &["d", "2", "a", "b", "WEIGHTS", "1", "2"]),
            ["app:d", "2", "app:a", "app:b", "WEIGHTS", "1", "2"]
        );
        assert_eq!(ok("ZINTER", &["2", "a", "b"]), ["2", "app:a", "app:b"]);
        assert_eq!(
            ok("SINTERCARD", &["1", "a", "LIMIT", "5"]),
            ["1", "app:a", "LIMIT", "5"]
        );
        assert_eq!(
            ok("LMPOP", &["2", "a", "b", "LEFT"]),
            ["2", "app:a", "app:b", "LEFT"]
        );
        assert_eq!(
            ok("BLMPOP", &["0.5", "1", "a", "LEFT"]),
            ["0.5", "1", "app:a", "LEFT"]
        );
        assert_eq!(
            ok("BZMPOP", &["1", "1", "z", "MIN"]),
            ["1", "1", "app:z", "MIN"]
        );
        assert!(denied("EVAL", &["s", "3", "a"]).contains("numkeys"));
        assert!(denied("EVAL", &["s", "x", "a"]).contains("numkeys"));
        assert!(denied("EVAL", &["s", "-1", "a"]).contains("numkeys"));
    }

    #[test]
    fn blocking_pops() {
        assert_eq!(ok("BLPOP", &["a", "b", "1.5"]), ["app:a", "app:b", "1.5"]);
        assert_eq!(ok("BZPOPMAX", &["z", "0"]), ["app:z", "0"]);
        let r = rewrite(P, "BRPOP", args(&["q", "0"])).unwrap();
        assert_eq!(r.reply, ReplyRewrite::StripFirst);
        let r = rewrite(P, "LMPOP", args(&["1", "q", "LEFT"])).unwrap();
        assert_eq!(r.reply, ReplyRewrite::StripFirst);
    }

    #[test]
    fn streams_after_streams_token() {
        assert_eq!(
            ok(
                "XREAD",
                &[
                    "COUNT", "2", "BLOCK", "100", "STREAMS", "s1", "s2", "0", "$"
                ]
            ),
            [
                "COUNT", "2", "BLOCK", "100", "STREAMS", "app:s1", "app:s2", "0", "$"
            ]
        );
        assert_eq!(
            ok(
                "XREADGROUP",
                &["GROUP", "STREAMS", "c", "NOACK", "STREAMS", "s", ">"]
            ),
            ["GROUP", "STREAMS", "c", "NOACK", "STREAMS", "app:s", ">"]
        );
        assert!(denied("XREAD", &["STREAMS", "a", "b", "0"]).contains("ids"));
        assert!(denied("XREAD", &["COUNT", "1"]).contains("STREAMS"));
        let r = rewrite(P, "xread", args(&["STREAMS", "s", "0"])).unwrap();
        assert_eq!(r.reply, ReplyRewrite::Streams);
    }

    #[test]
    fn subcommand_keys() {
        assert_eq!(ok("OBJECT", &["ENCODING", "k"]), ["ENCODING", "app:k"]);
        assert_eq!(ok("OBJECT", &["help"]), ["help"]);
        assert_eq!(ok("MEMORY", &["USAGE", "k"]), ["USAGE", "app:k"]);
        assert!(denied("MEMORY", &["DOCTOR"]).contains("MEMORY DOCTOR"));
        assert_eq!(
            ok("XGROUP", &["CREATE", "s", "g", "$", "MKSTREAM"]),
            ["CREATE", "app:s", "g", "$", "MKSTREAM"]
        );
        assert_eq!(ok("XINFO", &["STREAM", "s"]), ["STREAM", "app:s"]);
        assert_eq!(ok("SCRIPT", &["LOAD", "return 1"]), ["LOAD", "return 1"]);
        assert_eq!(ok("SCRIPT", &["EXISTS", "abc"]), ["EXISTS", "abc"]);
        denied("SCRIPT", &["FLUSH"]);
        denied("SCRIPT", &["KILL"]);
    }

    #[test]
    fn sort_patterns_are_confined() {
        assert_eq!(
            ok(
                "SORT",
                &[
                    "l", "BY", "w_*", "GET", "#", "GET", "o_*->f", "LIMIT", "0", "5", "ALPHA",
                    "STORE", "d"
                ]
            ),
            [
                "app:l",
                "BY",
                "app:w_*",
                "GET",
                "#",
                "GET",
                "app:o_*->f",
                "LIMIT",
                "0",
                "5",
                "ALPHA",
                "STORE",
                "app:d"
            ]
        );
        assert_eq!(
            ok("SORT", &["l", "BY", "nosort"]),
            ["app:l", "BY", "app:nosort"]
        );
        denied("SORT_RO", &["l", "STORE", "d"]);
        denied("SORT", &["l", "WHATEVER"]);
    }

    #[test]
    fn georadius_store() {
        assert_eq!(
            ok(
                "GEORADIUS",
                &["g", "1", "2", "10", "km", "COUNT", "3", "ANY", "STORE", "d"]
            ),
            [
                "app:g", "1", "2", "10", "km", "COUNT", "3", "ANY", "STORE", "app:d"
            ]
        );
        assert_eq!(
            ok(
                "GEORADIUSBYMEMBER",
                &["g", "m", "10", "km", "STOREDIST", "d"]
            ),
            ["app:g", "m", "10", "km", "STOREDIST", "app:d"]
        );
    }

    #[test]
    fn scan_is_confined_to_the_prefix() {
        assert_eq!(ok("SCAN", &["0"]), ["0", "MATCH", "app:*"]);
        assert_eq!(
            ok("SCAN", &["0", "MATCH", "user:*", "COUNT", "100"]),
            ["0", "MATCH", "app:user:*", "COUNT", "100"]
        );
        assert_eq!(
            ok("SCAN", &["7", "TYPE", "string"]),
            ["7", "TYPE", "string", "MATCH", "app:*"]
        );
        // Glob characters in a prefix (refused by `validate_prefix`, but never trusted here)
        // match literally.
        let r = rewrite(b"a*b:", "SCAN", args(&["0"])).unwrap();
        assert_eq!(r.args[2], b"a\\*b:*".to_vec());
        assert_eq!(r.reply, ReplyRewrite::Scan);
        assert!(r.on_host);
        denied("SCAN", &["0", "NOVALUES"]);
    }

    #[test]
    fn dangerous_commands_are_denied() {
        for cmd in [
            "KEYS",
            "FLUSHALL",
            "FLUSHDB",
            "CONFIG",
            "DEBUG",
            "SHUTDOWN",
            "MODULE",
            "ACL",
            "FUNCTION",
            "MIGRATE",
            "MOVE",
            "SWAPDB",
            "SELECT",
            "MONITOR",
            "SYNC",
            "PSYNC",
            "REPLICAOF",
            "SLAVEOF",
            "CLIENT",
            "CLUSTER",
            "SAVE",
            "BGSAVE",
            "BGREWRITEAOF",
            "FAILOVER",
            "RANDOMKEY",
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "MULTI",
            "EXEC",
            "WATCH",
            "AUTH",
            "HELLO",
            "DBSIZE",
            "INFO",
        ] {
            let msg = denied(cmd, &["x"]);
            assert!(msg.starts_with(cmd), "{cmd}: {msg}");
        }
        assert!(denied("keys", &["*"]).contains("SCAN"));
    }

    #[test]
    fn unknown_commands_are_denied() {
        assert!(denied("JSON.GET", &["k"]).contains("not supported"));
        assert!(denied("CONFIG GET", &["x"]).contains("not supported"));
    }

    #[test]
    fn unsandboxed_check_only_refuses_connection_state() {
        assert!(check_unsandboxed("KEYS").is_ok());
        assert!(check_unsandboxed("FLUSHDB").is_ok());
        assert!(check_unsandboxed("SELECT").is_err());
        assert!(check_unsandboxed("MULTI").is_err());
        assert!(check_unsandboxed("SUBSCRIBE").is_err());
    }

    #[test]
    fn prefix_validation() {
        assert!(validate_prefix("cache:").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("{cache}:").is_err());
        assert!(validate_prefix("ca}").is_err());
        assert!(validate_prefix("a*:").is_err());
        assert!(validate_prefix("a b:").is_err());
        assert!(validate_prefix("a[0]:").is_err());
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_are_stripped() {
        let mut v = Value::Array(vec![bulk("app:q"), bulk("job")]);
        strip_reply(P, ReplyRewrite::StripFirst, &mut v);
        assert_eq!(v, Value::Array(vec![bulk("q"), bulk("job")]));

        let mut nil = Value::Nil;
        strip_reply(P, ReplyRewrite::StripFirst, &mut nil);
        assert_eq!(nil, Value::Nil);

        let mut v = Value::Array(vec![
            bulk("app:q"),
            Value::Array(vec![bulk("app:not-a-key")]),
        ]);
        strip_reply(P, ReplyRewrite::StripFirst, &mut v);
        assert_eq!(
            v,
            Value::Array(vec![bulk("q"), Value::Array(vec![bulk("app:not-a-key")])])
        );

        let mut v = Value::Array(vec![
            bulk("17"),
            Value::Array(vec![bulk("app:a"), bulk("app:b")]),
        ]);
        strip_reply(P, ReplyRewrite::Scan, &mut v);
        assert_eq!(
            v,
            Value::Array(vec![bulk("17"), Value::Array(vec![bulk("a"), bulk("b")])])
        );

        let entries = Value::Array(vec![]);
        let mut v = Value::Array(vec![Value::Array(vec![bulk("app:s"), entries.clone()])]);
        strip_reply(P, ReplyRewrite::Streams, &mut v);
        assert_eq!(
            v,
            Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])])
        );
        let mut v = Value::Map(vec![(bulk("app:s"), entries.clone())]);
        strip_reply(P, ReplyRewrite::Streams, &mut v);
        assert_eq!(v, Value::Map(vec![(bulk("s"), entries)]));
    }

    #[test]
    fn blocking_classification() {
        let a = |l: &[&str]| args(l);
        assert_eq!(blocking("GET", &a(&["k"])), Blocking::No);
        assert_eq!(blocking("BLPOP", &a(&["k", "0"])), Blocking::Forever);
        assert_eq!(
            blocking("BLPOP", &a(&["k", "1.5"])),
            Blocking::For(Duration::from_millis(1500))
        );
        assert_eq!(
            blocking("BLMPOP", &a(&["2", "1", "k", "LEFT"])),
            Blocking::For(Duration::from_secs(2))
        );
        assert_eq!(
            blocking("BLMOVE", &a(&["a", "b", "LEFT", "LEFT", "3"])),
            Blocking::For(Duration::from_secs(3))
        );
        assert_eq!(blocking("XREAD", &a(&["STREAMS", "s", "0"])), Blocking::No);
        assert_eq!(
            blocking("XREAD", &a(&["BLOCK", "250", "STREAMS", "s", "$"])),
            Blocking::For(Duration::from_millis(250))
        );
        assert_eq!(
            blocking(
                "XREADGROUP",
                &a(&["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"])
            ),
            Blocking::Forever
        );
        assert_eq!(
            blocking("WAIT", &a(&["1", "100"])),
            Blocking::For(Duration::from_millis(100))
        );
    }

    #[test]
    fn write_limits() {
        let limits = Limits {
            max_write_bytes: 1000,
            max_wait: Duration::from_millis(500),
        };
        let check = |cmd: &str, list: &[&str]| {
            let mut a = args(list);
            enforce_limits(cmd, &mut a, &limits).map(|()| {
                a.into_iter()
                    .map(|x| String::from_utf8(x).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert!(check("SETRANGE", &["k", "536870911", "x"]).is_err());
        assert!(check("SETRANGE", &["k", "990", "0123456789"]).is_ok());
        assert!(check("SETRANGE", &["k", "991", "0123456789"]).is_err());
        assert!(check("SETBIT", &["k", "7999", "1"]).is_ok());
        assert!(check("SETBIT", &["k", "8000", "1"]).is_err());
        assert!(check("BITFIELD", &["k", "SET", "u8", "7992", "1"]).is_ok());
        assert!(check("BITFIELD", &["k", "SET", "u8", "7993", "1"]).is_err());
        assert!(check("BITFIELD", &["k", "INCRBY", "i16", "#500", "1"]).is_err());
        assert!(
            check(
                "BITFIELD",
                &["k", "GET", "u8", "#100000", "SET", "u8", "0", "1"]
            )
            .is_ok()
        );
        assert!(
            check(
                "BITFIELD",
                &["k", "OVERFLOW", "SAT", "SET", "u8", "#5000", "1"]
            )
            .is_err()
        );
        let big = "x".repeat(1001);
        let error = check("SET", &["k", &big]).unwrap_err().0;
        assert!(
            error.contains("1002 bytes, over the limit of 1000"),
            "{error}"
        );
        assert_eq!(check("WAIT", &["1", "0"]).unwrap(), ["1", "500"]);
        assert_eq!(check("WAIT", &["1", "100000"]).unwrap(), ["1", "500"]);
        assert_eq!(check("WAIT", &["1", "20"]).unwrap(), ["1", "20"]);
        assert_eq!(
            check("WAITAOF", &["1", "0", "0"]).unwrap(),
            ["1", "0", "500"]
        );
    }

    #[test]
    fn read_grants_move_only_stream_reads_of_matching_keys() {
        let grants = vec![ReadGrant {
            pattern: b"q{*}:ev".to_vec(),
            owner_prefix: b"queue:".to_vec(),
        }];
        let run = |cmd: &str, list: &[&str]| {
            let mut rewritten = rewrite(b"events:", cmd, args(list)).unwrap();
            let moved = apply_read_grants(b"events:", &grants, cmd, &mut rewritten.args);
            let out: Vec<String> = rewritten
                .args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (moved, out)
        };
        assert_eq!(
            run("XRANGE", &["q{mail}:ev", "-", "+"]),
            (
                true,
                vec!["queue:q{mail}:ev".into(), "-".into(), "+".into()]
            )
        );
        assert_eq!(
            run(
                "XREAD",
                &["COUNT", "5", "STREAMS", "q{a}:ev", "e{x}:s", "0-0", "1-0"]
            )
            .1,
            [
                "COUNT",
                "5",
                "STREAMS",
                "queue:q{a}:ev",
                "events:e{x}:s",
                "0-0",
                "1-0"
            ]
        );
        assert_eq!(run("XINFO", &["STREAM", "q{a}:ev"]).1[1], "queue:q{a}:ev");
        assert_eq!(
            run("EVALSHA_RO", &["sha", "2", "q{a}:ev", "e{x}:s", "q{b}:ev"]).1,
            ["sha", "2", "queue:q{a}:ev", "events:e{x}:s", "q{b}:ev"]
        );
        // A script that may write never reaches a granted key.
        assert_eq!(
            run("EVALSHA", &["sha", "1", "q{a}:ev"]).1[2],
            "events:q{a}:ev"
        );
        // Writes, and keys the grant does not match, stay in the component's namespace.
        assert_eq!(
            run("XADD", &["q{a}:ev", "*", "f", "v"]).1[0],
            "events:q{a}:ev"
        );
        assert_eq!(run("DEL", &["q{a}:ev"]).1[0], "events:q{a}:ev");
        assert_eq!(
            run("XRANGE", &["q{a}:i:x}:ev", "-", "+"]),
            (
                false,
                vec!["events:q{a}:i:x}:ev".into(), "-".into(), "+".into()]
            )
        );
        assert_eq!(run("XLEN", &["q{a}:w"]).0, false);
    }

    #[test]
    fn grant_patterns_match_without_crossing_braces() {
        assert!(grant_matches(b"q{*}:ev", b"q{mail}:ev"));
        assert!(grant_matches(b"q{*}:ev", b"q{}:ev"));
        assert!(!grant_matches(b"q{*}:ev", b"q{a}:j:1}:ev"));
        assert!(!grant_matches(b"q{*}:ev", b"q{a}:evx"));
        assert!(grant_matches(b"*", b"anything"));
        assert!(validate_grant_pattern("p{*}:s").is_ok());
        assert!(validate_grant_pattern("").is_err());
        assert!(validate_grant_pattern("a?").is_err());
        assert!(validate_grant_pattern("a b").is_err());
    }

    #[test]
    fn granted_stream_names_are_stripped_once() {
        let grants = vec![ReadGrant {
            pattern: b"q{*}:ev".to_vec(),
            owner_prefix: b"queue:".to_vec(),
        }];
        let mut reply = Value::Array(vec![
            Value::Array(vec![bulk("queue:q{a}:ev"), Value::Array(vec![])]),
            Value::Array(vec![bulk("e{x}:s"), Value::Array(vec![])]),
        ]);
        strip_granted_streams(&grants, &mut reply);
        let Value::Array(streams) = reply else {
            unreachable!()
        };
        let names: Vec<Value> = streams
            .into_iter()
            .map(|s| match s {
                Value::Array(mut pair) => pair.remove(0),
                other => other,
            })
            .collect();
        assert_eq!(names, vec![bulk("q{a}:ev"), bulk("e{x}:s")]);
    }

    #[test]
    fn restore_is_denied() {
        assert!(denied("RESTORE", &["k", "0", "payload"]).contains("crash"));
        assert!(denied("restore-asking", &["k", "0", "payload"]).starts_with("RESTORE"));
    }

    /// The rewriter against Redis's own idea of where a command's keys are: for generated
    /// commands, every key `COMMAND GETKEYS` finds in the rewritten command (and every
    /// channel, `SCAN` pattern and `SORT` pattern) carries the prefix, or the rewriter
    /// refused the command.
    mod property {
        use super::*;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        use std::sync::atomic::{AtomicUsize, Ordering};

        const NAMES: &[&str] = &[
            "GET",
            "SET",
            "MSET",
            "MSETNX",
            "DEL",
            "EXISTS",
            "MGET",
            "RENAME",
            "LMOVE",
            "BLMOVE",
            "RPOPLPUSH",
            "SMOVE",
            "COPY",
            "LCS",
            "BITOP",
            "BLPOP",
            "BZPOPMIN",
            "EVAL",
            "EVALSHA",
            "EVAL_RO",
            "FCALL",
            "BLMPOP",
            "BZMPOP",
            "ZUNION",
            "ZINTER",
            "ZDIFF",
            "ZINTERCARD",
            "SINTERCARD",
            "LMPOP",
            "ZMPOP",
            "ZUNIONSTORE",
            "ZINTERSTORE",
            "ZDIFFSTORE",
            "SORT",
            "SORT_RO",
            "GEORADIUS",
            "GEORADIUSBYMEMBER",
            "GEOSEARCHSTORE",
            "ZRANGESTORE",
            "XREAD",
            "XREADGROUP",
            "OBJECT",
            "MEMORY",
            "XINFO",
            "XGROUP",
            "PUBLISH",
            "SPUBLISH",
            "SCAN",
            "PFMERGE",
            "SINTERSTORE",
            "HSET",
            "XADD",
            "TOUCH",
            "KEYS",
            "MIGRATE",
            "RESTORE",
            "MOVE",
            "SWAPDB",
            "FLUSHALL",
            "RANDOMKEY",
            "DUMP",
            "WAIT",
            "PING",
            "UNLINK",
            "GETEX",
            "XCLAIM",
            "XAUTOCLAIM",
            "SUNIONSTORE",
        ];

        const WORDS: &[&str] = &[
            "k",
            "a",
            "b",
            "x",
            "0",
            "1",
            "2",
            "3",
            "-1",
            "5",
            "STREAMS",
            "STORE",
            "STOREDIST",
            "BY",
            "GET",
            "#",
            "LIMIT",
            "MATCH",
            "COUNT",
            "TYPE",
            "DB",
            "KEYS",
            "LEFT",
            "RIGHT",
            "WEIGHTS",
            "AGGREGATE",
            "GROUP",
            "BLOCK",
            "NOACK",
            "*",
            "$",
            ">",
            "ENCODING",
            "USAGE",
            "CREATE",
            "STREAM",
            "MIN",
            "MAX",
            "km",
            "ALPHA",
            "ASC",
            "REPLACE",
            "AND",
            "w_*",
            "o_*->f",
            "nosort",
            "{t}k",
            "other:k",
        ];

        fn command() -> impl Strategy<Value = (String, Vec<String>)> {
            let name = prop_oneof![
                9 => proptest::sample::select(NAMES).prop_map(str::to_string),
                1 => "[A-Z]{1,8}",
            ];
            let word = prop_oneof![
                6 => proptest::sample::select(WORDS).prop_map(str::to_string),
                1 => "[a-z:]{1,6}",
            ];
            (name, proptest::collection::vec(word, 0..9))
        }

        #[test]
        fn every_key_reaching_redis_carries_the_prefix() {
            let server = redwasm_testkit::RedisServer::start();
            let client = redis::Client::open(server.url()).unwrap();
            let conn = std::cell::RefCell::new(client.get_connection().unwrap());
            let prefix: &[u8] = b"app:";
            let checked_keys = AtomicUsize::new(0);
            let refused = AtomicUsize::new(0);
            let mut runner = TestRunner::new(Config {
                cases: 3000,
                failure_persistence: None,
                ..Config::default()
            });
            let result = runner.run(&command(), |(name, list)| {
                let upper_name = name.to_ascii_uppercase();
                let Ok(rewritten) = rewrite(
                    prefix,
                    &name,
                    args(&list.iter().map(String::as_str).collect::<Vec<_>>()),
                ) else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                };
                let out = &rewritten.args;
                let mut getkeys = redis::cmd("COMMAND");
                getkeys.arg("GETKEYS").arg(&upper_name);
                for a in out {
                    getkeys.arg(a.as_slice());
                }
                // An error means no keys, or arguments Redis itself rejects (it would not run
                // the command either).
                if let Ok(keys) = getkeys.query::<Vec<Vec<u8>>>(&mut *conn.borrow_mut()) {
                    for key in keys {
                        prop_assert!(
                            key.starts_with(prefix),
                            "{upper_name} {list:?} -> {:?}: key {:?} lacks the prefix",
                            out.iter()
                                .map(|a| String::from_utf8_lossy(a))
                                .collect::<Vec<_>>(),
                            String::from_utf8_lossy(&key)
                        );
                        checked_keys.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let show = || format!("{upper_name} {list:?}");
                match upper_name.as_str() {
                    "PUBLISH" | "SPUBLISH" if !out.is_empty() => {
                        prop_assert!(out[0].starts_with(prefix), "channel of {}", show());
                    }
                    "SCAN" => {
                        // After the cursor (which Redis would refuse if it were a word).
                        let at = out
                            .iter()
                            .skip(1)
                            .position(|a| a.eq_ignore_ascii_case(b"MATCH"));
                        let pattern = at.and_then(|i| out.get(i + 2));
                        prop_assert!(
                            pattern.is_some_and(|p| p.starts_with(prefix)),
                            "SCAN pattern of {}",
                            show()
                        );
                        prop_assert!(rewritten.on_host);
                    }
                    "SORT" | "SORT_RO" => {
                        for pair in out.windows(2) {
                            if (pair[0].eq_ignore_ascii_case(b"BY")
                                || pair[0].eq_ignore_ascii_case(b"GET"))
                                && pair[1] != b"#"
                            {
                                prop_assert!(pair[1].starts_with(prefix), "pattern of {}", show());
                            }
                        }
                    }
                    "KEYS" | "MIGRATE" | "RESTORE" | "MOVE" | "SWAPDB" | "FLUSHALL"
                    | "RANDOMKEY" => {
                        return Err(TestCaseError::fail(format!("{} was not refused", show())));
                    }
                    _ => {}
                }
                Ok(())
            });
            if let Err(error) = result {
                panic!("{error}");
            }
            // The property was really exercised: Redis found keys in many commands, and the
            // rewriter refused some.
            assert!(
                checked_keys.load(Ordering::Relaxed) > 1000,
                "keys checked: {checked_keys:?}"
            );
            assert!(
                refused.load(Ordering::Relaxed) > 100,
                "refused: {refused:?}"
            );
        }
    }
}
