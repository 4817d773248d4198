//! The script watchdog: a script that runs past its time limit is stopped from the host's own
//! connection, because while one script runs Redis serves nobody else (after its
//! `busy-reply-threshold`, everybody gets `BUSY`).
//!
//! `SCRIPT KILL` (`FUNCTION KILL` for `FCALL`) is sent on a fresh connection of the host's
//! admin endpoint (the component's own user may not run it: it could kill another
//! component's script), and repeated until Redis answers that no script runs. Redis only
//! processes it once the script has run for `busy-reply-threshold`, so the limit the host
//! enforces is the larger of the two. A script that has already written cannot be killed
//! (`UNKILLABLE`): that is logged as an error and counted, and the server stays busy until
//! the script ends; `SHUTDOWN NOSAVE` is the operator's only way out.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use redis::Value;

use super::pool::{Counters, Endpoint, Failure};

/// Which kill command stops a script command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptKind {
    /// `EVAL`, `EVALSHA` and their `_RO` forms: `SCRIPT KILL`.
    Script,
    /// `FCALL`, `FCALL_RO`: `FUNCTION KILL`.
    Function,
}

/// The script kind of an (upper-case) command, if it runs one.
pub(crate) fn script_kind(name: &str) -> Option<ScriptKind> {
    match name {
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" => Some(ScriptKind::Script),
        "FCALL" | "FCALL_RO" => Some(ScriptKind::Function),
        _ => None,
    }
}

/// How the watchdog's kill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Redis stopped the script.
    Killed,
    /// Nothing was running any more (the script ended on its own).
    NotBusy,
    /// The script had written: Redis refuses to kill it.
    Unkillable,
    /// The kill could not be delivered (connection failure) before giving up.
    Failed,
}

/// How long the watchdog keeps trying to deliver the kill.
const KILL_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two kill attempts.
const KILL_RETRY: Duration = Duration::from_millis(50);

/// Runs the script command `run`; past `limit`, kills it through `killer`.
pub(crate) async fn guard(
    run: impl Future<Output = Result<Value, Failure>>,
    killer: Arc<Endpoint>,
    kind: ScriptKind,
    limit: Duration,
    component: &str,
) -> Result<Value, Failure> {
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result,
        () = tokio::time::sleep(limit) => {}
    }
    tracing::warn!(
        component,
        ?limit,
        "redis: script past its time limit; killing it"
    );
    // On its own task: the guest's call may end first (its response timeout, its request
    // deadline), and the script must still be stopped.
    let kill = tokio::spawn(kill_until_stopped(
        killer,
        kind,
        component.to_string(),
        limit,
    ));
    let result = run.await;
    let outcome = match tokio::time::timeout(Duration::from_millis(200), kill).await {
        Ok(Ok(outcome)) => Some(outcome),
        _ => None,
    };
    match outcome {
        Some(Outcome::Killed) => Err(Failure::ScriptKilled(limit)),
        Some(Outcome::Unkillable) => Err(Failure::ScriptUnkillable(limit)),
        _ => result,
    }
}

/// Kills until Redis says nothing runs, then counts and reports what happened.
async fn kill_until_stopped(
    killer: Arc<Endpoint>,
    kind: ScriptKind,
    component: String,
    limit: Duration,
) -> Outcome {
    let outcome = deliver_kill(&killer, kind).await;
    let counters: &Counters = killer.counters();
    match outcome {
        Outcome::Killed => {
            counters.scripts_killed.fetch_add(1, Relaxed);
        }
        Outcome::Unkillable => {
            counters.scripts_unkillable.fetch_add(1, Relaxed);
            tracing::error!(
                %component,
                ?limit,
                "redis: a script ran past its time limit after writing; Redis cannot kill it \
                 and serves nobody else until it ends (SHUTDOWN NOSAVE is the only way out)"
            );
        }
        Outcome::Failed => {
            tracing::error!(%component, ?limit, "redis: could not deliver SCRIPT KILL");
        }
        Outcome::NotBusy => {}
    }
    outcome
}

async fn deliver_kill(killer: &Endpoint, kind: ScriptKind) -> Outcome {
    let mut cmd = redis::cmd(match kind {
        ScriptKind::Script => "SCRIPT",
        ScriptKind::Function => "FUNCTION",
    });
    cmd.arg("KILL");
    let deadline = tokio::time::Instant::now() + KILL_DEADLINE;
    let mut conn = None;
    while tokio::time::Instant::now() < deadline {
        if conn.is_none() {
            conn = killer.dedicated_connection_plain().await.ok();
        }
        if let Some(c) = conn.as_mut() {
            match cmd.query_async::<Value>(c).await {
                Ok(_) => return Outcome::Killed,
                Err(e) => {
                    let text = e.to_string();
                    if text.contains("NOTBUSY") {
                        return Outcome::NotBusy;
                    }
                    if text.contains("UNKILLABLE") {
                        return Outcome::Unkillable;
                    }
                    // A response timeout: Redis has not reached busy-reply-threshold yet and
                    // holds the kill in its socket; a fresh connection asks again.
                    if e.is_timeout() || e.is_io_error() || e.is_unrecoverable_error() {
                        conn = None;
                    }
                }
            }
        }
        tokio::time::sleep(KILL_RETRY).await;
    }
    Outcome::Failed
}
