//! The Lua scripts (files under `lua/`, each documenting its KEYS and ARGV).

use crate::redis::Script;

/// Create an entry and its first event.
pub static START: Script = Script::new("start", include_str!("../lua/start.lua"));
/// Record a step, or complete / fail the entry; appends the event.
pub static UPDATE: Script = Script::new("update", include_str!("../lua/update.lua"));
/// Where an event stream starts: a snapshot, a replay after `Last-Event-ID`, or a reset.
pub static EVENTS: Script = Script::new("events", include_str!("../lua/events.lua"));
