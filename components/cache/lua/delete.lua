-- delete.lua — remove one entry (DELETE / typed `delete`).
--
-- KEYS[1]  entry hash        <prefix>c{<ns>}:e:<key>
-- KEYS[2]  namespace version <prefix>c{<ns>}:v
-- KEYS[3]  live-entry index  <prefix>c{<ns>}:i
-- ARGV[1]  now_ms (caller's clock)
-- ARGV[2]  the key (index member)
--
-- Reply: {1} a live entry (fresh or stale, current version) was removed, else {0}.
local now = tonumber(ARGV[1])
local e = redis.call('HMGET', KEYS[1], 'v', 'su')
local live = 0
if e[1] and e[1] == (redis.call('GET', KEYS[2]) or '0') and now < tonumber(e[2]) then
  live = 1
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[2])
return {live}
