-- invalidate_all.lua — drop a whole namespace in O(1) (plus an O(log n) count).
--
-- KEYS[1]  namespace version <prefix>c{<ns>}:v
-- KEYS[2]  live-entry index  <prefix>c{<ns>}:i
-- KEYS[3]  events stream     <prefix>c{<ns>}:ev  (the channel `cache.<ns>`)
-- ARGV[1]  now_ms (caller's clock)
-- ARGV[2]  the namespace (for the event)
-- ARGV[3]  events stream MAXLEN (approximate)
-- ARGV[4]  events stream retention, ms (PEXPIRE after each event)
--
-- Bumping the version turns every existing entry into a miss (entries record the version
-- they were written under); they are reclaimed by their own PEXPIRE. UNLINK frees the index
-- off the main thread, so this stays O(1) whatever the namespace size.
--
-- Appends one `invalidate` event (`{"ns","all":true,"invalidated"}`) to the events stream.
--
-- Reply: {n} the number of entries that were live (fresh or within their grace period).
local live = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
redis.call('UNLINK', KEYS[2])
redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'event', 'invalidate',
  'data', cjson.encode({ns = ARGV[2], all = true, invalidated = live}))
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {live}
