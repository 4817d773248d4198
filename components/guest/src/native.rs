//! [`RedisExec`] over redis-rs, for running component logic natively against a real
//! `redis-server` in tests (feature `native-redis`; never part of a wasm build).

use std::time::Duration;

use crate::redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};

/// [`RedisExec`] over a synchronous redis-rs connection, flattening array replies the way
/// Spin's `execute` does. Connects lazily and reconnects after I/O errors.
pub struct RedisRs {
    client: redis::Client,
    connection: Option<redis::Connection>,
}

impl RedisRs {
    /// An executor for `url` (nothing is opened yet).
    pub fn new(url: &str) -> Self {
        Self {
            client: redis::Client::open(url).expect("valid redis url"),
            connection: None,
        }
    }
}

impl RedisExec for RedisRs {
    fn exec(&mut self, command: &str, args: &[Arg<'_>]) -> Result<Vec<Value>, RedisError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))
                .map_err(|e| RedisError::new(RedisErrorKind::Unavailable, e.to_string()))?,
        };
        let mut cmd = redis::cmd(command);
        for arg in args {
            match arg {
                Arg::Int(value) => cmd.arg(*value),
                Arg::Bytes(bytes) => cmd.arg(*bytes),
            };
        }
        match cmd.query::<redis::Value>(&mut connection) {
            Ok(value) => {
                self.connection = Some(connection);
                let mut out = Vec::new();
                flatten(value, &mut out)?;
                Ok(out)
            }
            Err(error)
                if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() =>
            {
                Err(RedisError::new(
                    RedisErrorKind::Unavailable,
                    error.to_string(),
                ))
            }
            Err(error) => {
                self.connection = Some(connection);
                let text = match error.code() {
                    Some(code) => format!("{code} {error}"),
                    None => error.to_string(),
                };
                Err(RedisError::from_reply_text(text))
            }
        }
    }
}

fn flatten(value: redis::Value, out: &mut Vec<Value>) -> Result<(), RedisError> {
    match value {
        redis::Value::Nil => out.push(Value::Nil),
        redis::Value::Int(value) => out.push(Value::Int(value)),
        redis::Value::BulkString(bytes) => out.push(Value::Bytes(bytes)),
        redis::Value::SimpleString(text) => out.push(Value::Status(text)),
        redis::Value::Okay => out.push(Value::Status("OK".into())),
        redis::Value::Boolean(flag) => out.push(Value::Int(i64::from(flag))),
        redis::Value::Double(value) => out.push(Value::Bytes(value.to_string().into_bytes())),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        redis::Value::ServerError(error) => {
            return Err(RedisError::from_reply_text(format!("{error:?}")));
        }
        other => out.push(Value::Bytes(format!("{other:?}").into_bytes())),
    }
    Ok(())
}
