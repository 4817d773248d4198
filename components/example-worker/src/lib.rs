//! An example queue worker for the redwasm host's queue-poll trigger: it exports
//! `redwasm:queue/handler` (wit/queue-0.1.0.wit) and does real work.
//!
//! # Layout
//! - [`run`]: the logic, plain Rust (job type → result or failure), tested natively.
//! - `wasm` (only on `wasm32`): the handler export; with `"record": "<set>"` in the payload it
//!   also adds the job id to that Redis set (in the worker's own namespace), which the
//!   crash-safety tests count. And Spin's `inbound-redis` handler: the Spin fallback.
//! - [`drain`]: the Spin fallback's logic (claim, run, ack through the queue's own Lua),
//!   plain Rust over the Redis seam.
//!
//! Job types: `checksum` (`{"text", "rounds"}` → `{"fnv64", "rounds"}`: CPU work), `fail`
//! (retryable failure), `fatal` (no retry); anything else echoes its payload.

#![deny(missing_docs)]
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

use serde_json::{Value, json};

pub mod drain;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // wit-bindgen expansions; no hand-written unsafe.
mod wasm;

/// Most rounds a `checksum` job may ask for.
pub const MAX_ROUNDS: u64 = 10_000_000;

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Retry after the backoff.
    Retry(String),
    /// Do not retry.
    Fatal(String),
}

fn fnv64(data: &[u8], seed: u64) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Runs one job.
pub fn run(job_type: &str, payload: &Value) -> Result<Value, Failure> {
    match job_type {
        "checksum" => {
            let text = payload["text"].as_str().unwrap_or_default();
            let rounds = payload["rounds"].as_u64().unwrap_or(1);
            if rounds == 0 || rounds > MAX_ROUNDS {
                return Err(Failure::Fatal(format!(
                    "rounds must be from 1 to {MAX_ROUNDS}"
                )));
            }
            let mut hash = 0;
            for _ in 0..rounds {
                hash = fnv64(text.as_bytes(), hash);
            }
            Ok(json!({ "fnv64": format!("{hash:016x}"), "rounds": rounds }))
        }
        "fail" => Err(Failure::Retry(
            payload["message"].as_str().unwrap_or("failed").to_string(),
        )),
        "fatal" => Err(Failure::Fatal(
            payload["message"].as_str().unwrap_or("fatal").to_string(),
        )),
        _ => Ok(json!({ "echo": payload })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_deterministic_and_depend_on_rounds() {
        let one = run("checksum", &json!({"text": "abc", "rounds": 1})).unwrap();
        let again = run("checksum", &json!({"text": "abc", "rounds": 1})).unwrap();
        let two = run("checksum", &json!({"text": "abc", "rounds": 2})).unwrap();
        assert_eq!(one, again);
        assert_ne!(one["fnv64"], two["fnv64"]);
        assert!(matches!(
            run("checksum", &json!({"rounds": 0})),
            Err(Failure::Fatal(_))
        ));
        assert_eq!(
            run("fail", &json!({"message": "x"})),
            Err(Failure::Retry("x".into()))
        );
        assert_eq!(run("other", &json!(1)).unwrap(), json!({"echo": 1}));
    }
}
