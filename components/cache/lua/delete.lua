-- delete.lua — remove one entry (DELETE / typed `delete`).
--
-- KEYS[1]  entry             <prefix>c{<ns>}:d:<key>
-- KEYS[2]  namespace version <prefix>c{<ns>}:v
-- KEYS[3]  live-entry index  <prefix>c{<ns>}:i
-- KEYS[4]  revalidate claim  <prefix>c{<ns>}:r:<key>
-- KEYS[5]  events stream     <prefix>c{<ns>}:ev  (the channel `cache.<ns>`)
-- ARGV[1]  now_ms (caller's clock)
-- ARGV[2]  the key (index member)
-- ARGV[3]  the namespace (for the event)
-- ARGV[4]  events stream MAXLEN (approximate)
-- ARGV[5]  events stream retention, ms (PEXPIRE after each event)
--
-- When an entry was there (live or not), one `delete` event (`{"ns","key"}`) is appended to
-- the namespace's events stream.
--
-- Reply: {1} a live entry (fresh or stale, current version) was removed, else {0}.
local now = tonumber(ARGV[1])
local got = redis.call('MGET', KEYS[1], KEYS[2])
local live = 0
if got[1] then
  local v, su = string.match(got[1], '^(%d+) %d+ %d+ (%d+) ')
  if v and v == (got[2] or '0') and now < tonumber(su) then live = 1 end
end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[2])
if got[1] then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'event', 'delete',
    'data', cjson.encode({ns = ARGV[3], key = ARGV[2]}))
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
return {live}
