//! The Lua scripts (files under `lua/`, each documenting its KEYS and ARGV).

use crate::redis::Script;

/// Store a new session.
pub static CREATE: Script = Script::new("create", include_str!("../lua/create.lua"));
/// Read a session, sliding its expiry.
pub static READ: Script = Script::new("read", include_str!("../lua/read.lua"));
/// Replace a session's data at an expected version.
pub static UPDATE: Script = Script::new("update", include_str!("../lua/update.lua"));
/// Record a session in its user's index.
pub static INDEX_ADD: Script = Script::new("index_add", include_str!("../lua/index_add.lua"));
/// Take and delete a user's index.
pub static INDEX_TAKE: Script = Script::new("index_take", include_str!("../lua/index_take.lua"));
