-- release.lua — give a leased job back without spending its attempt (a worker draining at
-- shutdown).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  job id
-- ARGV[3]  lease token
-- ARGV[4]  events stream MAXLEN
--
-- Keys used: j:<id>, a, w, seq, ev.
--
-- Reply: {1}; {0, status} the lease is not current: nothing written.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local id = ARGV[2]
local jk = base .. 'j:' .. id
local state = redis.call('HMGET', jk, 'status', 'lease', 'priority', 'attempts')
if state[1] ~= 'active' or state[2] ~= ARGV[3] then
  return {0, state[1] or 'unknown'}
end
redis.call('ZREM', base .. 'a', id)
local seq = redis.call('INCR', base .. 'seq')
redis.call('HSET', jk, 'status', 'waiting', 'lease', '', 'available_ms', now,
  'attempts', math.max(0, tonumber(state[4]) - 1))
redis.call('ZADD', base .. 'w', (1000 - tonumber(state[3])) * 2199023255552 + seq, id)
redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[4], '*', 'event', 'waiting', 'id', id, 'ms', now)
redis.call('LPUSH', base .. 'n', 1)
redis.call('LTRIM', base .. 'n', 0, 0)
return {1}
