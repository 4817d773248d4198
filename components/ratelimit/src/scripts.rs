//! The Lua scripts (files under `lua/`, each documenting its KEYS and ARGV).

use crate::redis::Script;

/// The one multi-policy script: evaluate every policy, commit only if all admit (also used,
/// in `peek` mode, to read a policy's state without consuming).
pub static CHECK: Script = Script::new("check", include_str!("../lua/check.lua"));
