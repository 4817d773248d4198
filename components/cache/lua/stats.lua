-- stats.lua — counters and live key count of one namespace.
--
-- KEYS[1]  stats hash        <prefix>c{<ns>}:s
-- KEYS[2]  live-entry index  <prefix>c{<ns>}:i
-- ARGV[1]  now_ms (caller's clock)
--
-- Reply: {hits, misses, stale_hits, keys}; hits include stale hits.
local s = redis.call('HMGET', KEYS[1], 'hits', 'misses', 'stale_hits')
local keys = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
return {tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0, keys}
