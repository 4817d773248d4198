-- invalidate_all.lua — drop a whole namespace in O(1) (plus an O(log n) count).
--
-- KEYS[1]  namespace version <prefix>c{<ns>}:v
-- KEYS[2]  live-entry index  <prefix>c{<ns>}:i
-- ARGV[1]  now_ms (caller's clock)
--
-- Bumping the version turns every existing entry into a miss (entries record the version
-- they were written under); they are reclaimed by their own PEXPIRE. UNLINK frees the index
-- off the main thread, so this stays O(1) whatever the namespace size.
--
-- Reply: {n} the number of entries that were live (fresh or within their grace period).
local live = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
redis.call('UNLINK', KEYS[2])
redis.call('INCR', KEYS[1])
return {live}
