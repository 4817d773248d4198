//! The Lua scripts (files under `lua/`, each documenting its KEYS and ARGV).

use crate::redis::Script;

/// One read: version check, entry, stats, revalidation claim, lease.
pub static GET: Script = Script::new("get", include_str!("../lua/get.lua"));
/// One write, with the optional `If-Match` check.
pub static SET: Script = Script::new("set", include_str!("../lua/set.lua"));
/// One delete.
pub static DELETE: Script = Script::new("delete", include_str!("../lua/delete.lua"));
/// Tag invalidation.
pub static INVALIDATE_TAGS: Script = Script::new(
    "invalidate_tags",
    include_str!("../lua/invalidate_tags.lua"),
);
/// Namespace invalidation by version bump.
pub static INVALIDATE_ALL: Script =
    Script::new("invalidate_all", include_str!("../lua/invalidate_all.lua"));
/// Counters and live key count.
pub static STATS: Script = Script::new("stats", include_str!("../lua/stats.lua"));
