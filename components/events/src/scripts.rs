//! The Lua scripts (files under `lua/`, each documenting its KEYS and ARGV).

use crate::redis::Script;

/// Append one event to a channel of the component's own, trimmed and with its expiry.
pub static PUBLISH: Script = Script::new("publish", include_str!("../lua/publish.lua"));
/// Where a client's stream starts: live, a replay after `Last-Event-ID`, or a reset
/// (read-only: run with `EVALSHA_RO`).
pub static START: Script = Script::new("start", include_str!("../lua/start.lua"));
