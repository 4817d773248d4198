//! The one seam between a component's logic and Redis: [`RedisExec`], a generic "run this command"
//! that both Spin's `fermyon:spin/redis@2.0.0` `execute` (in wasm) and redis-rs (in native
//! tests) implement, plus [`Script`], which runs the Lua files by `EVALSHA` with an `EVAL`
//! fallback.

use std::fmt;
use std::sync::OnceLock;

/// One command argument, mirroring Spin's `redis-parameter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// An integer (sent as its decimal text).
    Int(i64),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Bytes(value.as_bytes())
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Bytes(value.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(value: &'a [u8]) -> Self {
        Arg::Bytes(value)
    }
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

/// One reply scalar, mirroring Spin's `redis-result`. Array replies are flattened by the
/// executor, so scripts reply with flat arrays of scalars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Nil (a Lua `false` in a script reply).
    Nil,
    /// A status reply such as `OK`.
    Status(String),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bytes(Vec<u8>),
}

/// What kind of failure a [`RedisError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisErrorKind {
    /// Could not connect, or the connection broke.
    Unavailable,
    /// `EVALSHA` named a script the server does not have (retry with `EVAL`).
    NoScript,
    /// Redis answered with an error reply.
    Reply,
}

/// A failed Redis command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisError {
    /// The kind of failure.
    pub kind: RedisErrorKind,
    /// A human-readable description.
    pub message: String,
}

impl RedisError {
    /// An error of the given kind.
    pub fn new(kind: RedisErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An error reply whose kind is recognised from its text: executors such as Spin's only
    /// pass the message through, and a missing script shows up as `NOSCRIPT ...` in it.
    pub fn from_reply_text(message: impl Into<String>) -> Self {
        let message = message.into();
        let kind = if message.to_ascii_uppercase().contains("NOSCRIPT") {
            RedisErrorKind::NoScript
        } else {
            RedisErrorKind::Reply
        };
        Self { kind, message }
    }

    /// True when `EVALSHA` should be retried as `EVAL`.
    pub fn is_no_script(&self) -> bool {
        self.kind == RedisErrorKind::NoScript
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis {:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RedisError {}

/// Runs one Redis command and returns its reply as a flat list of scalars.
pub trait RedisExec {
    /// Executes `command` with `args`; array replies are flattened into the list.
    fn exec(&mut self, command: &str, args: &[Arg<'_>]) -> Result<Vec<Value>, RedisError>;
}

impl<T: RedisExec + ?Sized> RedisExec for &mut T {
    fn exec(&mut self, command: &str, args: &[Arg<'_>]) -> Result<Vec<Value>, RedisError> {
        (**self).exec(command, args)
    }
}

/// A Lua script embedded in the binary, run by SHA-1 first.
#[derive(Debug)]
pub struct Script {
    name: &'static str,
    source: &'static str,
    sha1: OnceLock<String>,
}

impl Script {
    /// A script named `name` (for error messages) with the given Lua source.
    pub const fn new(name: &'static str, source: &'static str) -> Self {
        Self {
            name,
            source,
            sha1: OnceLock::new(),
        }
    }

    /// The script's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Lua source.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Lower-case hex SHA-1 of the source, as `EVALSHA` expects (computed once).
    pub fn sha1_hex(&self) -> &str {
        self.sha1
            .get_or_init(|| sha1_smol::Sha1::from(self.source).digest().to_string())
    }

    /// Runs the script: `EVALSHA`, and `EVAL` (which also caches it server-side) when the
    /// server answers `NOSCRIPT` (first use, after a restart or `SCRIPT FLUSH`).
    pub fn run(
        &self,
        redis: &mut dyn RedisExec,
        keys: &[String],
        argv: &[Arg<'_>],
    ) -> Result<Vec<Value>, RedisError> {
        self.run_as(redis, ["EVALSHA", "EVAL"], keys, argv)
    }

    /// Runs the script read-only (`EVALSHA_RO`, `EVAL_RO` on `NOSCRIPT`; Redis 7): Redis
    /// refuses any write it attempts. The redwasm host lets such scripts read keys another
    /// component granted (its read grants); ordinary scripts stay in the caller's namespace.
    pub fn run_read_only(
        &self,
        redis: &mut dyn RedisExec,
        keys: &[String],
        argv: &[Arg<'_>],
    ) -> Result<Vec<Value>, RedisError> {
        self.run_as(redis, ["EVALSHA_RO", "EVAL_RO"], keys, argv)
    }

    fn run_as(
        &self,
        redis: &mut dyn RedisExec,
        [by_sha, by_source]: [&str; 2],
        keys: &[String],
        argv: &[Arg<'_>],
    ) -> Result<Vec<Value>, RedisError> {
        // numkeys is sent as decimal text: that is what Redis receives either way, and a
        // sandboxing host that locates KEYS can parse it uniformly.
        let numkeys = keys.len().to_string();
        let mut args: Vec<Arg<'_>> = Vec::with_capacity(2 + keys.len() + argv.len());
        args.push(Arg::Bytes(self.sha1_hex().as_bytes()));
        args.push(Arg::Bytes(numkeys.as_bytes()));
        args.extend(keys.iter().map(Arg::from));
        args.extend_from_slice(argv);
        match redis.exec(by_sha, &args) {
            Err(error) if error.is_no_script() => {
                args[0] = Arg::Bytes(self.source.as_bytes());
                redis.exec(by_source, &args)
            }
            other => other,
        }
    }
}
