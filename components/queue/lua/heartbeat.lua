-- heartbeat.lua — extend a lease (POST /jobs/{id}/heartbeat, the queue trigger while a
-- handler runs).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  job id
-- ARGV[3]  lease token
-- ARGV[4]  lease_ms: the new deadline is now + lease_ms
--
-- Keys used: j:<id>, a.
--
-- Reply: {1, lease_until_ms}; {0, status} the lease is not current (a cancelled job answers
-- {0, "cancelled"}: that is how a pull worker learns of a cancel).
local base = KEYS[1]
local now = tonumber(ARGV[1])
local jk = base .. 'j:' .. ARGV[2]
local state = redis.call('HMGET', jk, 'status', 'lease')
if state[1] ~= 'active' or state[2] ~= ARGV[3] then
  return {0, state[1] or 'unknown'}
end
local until_ms = now + tonumber(ARGV[4])
redis.call('HSET', jk, 'lease_until', until_ms)
redis.call('ZADD', base .. 'a', 'XX', until_ms, ARGV[2])
return {1, until_ms}
