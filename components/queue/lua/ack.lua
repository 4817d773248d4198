-- ack.lua — a leased job finished (POST /jobs/{id}/ack, the queue trigger).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  job id
-- ARGV[3]  lease token
-- ARGV[4]  result (JSON text, "" = none)
-- ARGV[5]  completed jobs kept (by count)
-- ARGV[6]  completed jobs kept (by age, ms)
-- ARGV[7]  events stream MAXLEN
-- ARGV[8]  trim bound: at most this many old jobs deleted per call
--
-- Keys used: j:<id>, a, c (completed zset by finish time), stats (processed_total), lat
-- ("r<bucket>": run time histogram), ev.
--
-- Reply: {1} done; {0, status} the lease is not current (stale, expired and re-claimed, or
-- the job was cancelled): nothing written.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local id = ARGV[2]
local jk = base .. 'j:' .. id
local state = redis.call('HMGET', jk, 'status', 'lease', 'claimed_ms')
if state[1] ~= 'active' or state[2] ~= ARGV[3] then
  return {0, state[1] or 'unknown'}
end
redis.call('HSET', jk, 'status', 'completed', 'finished_ms', now, 'result', ARGV[4], 'lease', '')
redis.call('ZREM', base .. 'a', id)
redis.call('ZADD', base .. 'c', now, id)
redis.call('HINCRBY', base .. 'stats', 'processed_total', 1)
local run = math.max(0, now - tonumber(state[3] or now))
redis.call('HINCRBY', base .. 'lat', 'r' .. math.floor(4 * math.log(run + 1) / math.log(2)), 1)
redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[7], '*', 'event', 'completed', 'id', id, 'ms', now)

-- Retention: by count, then by age; bounded work per call.
local bound = tonumber(ARGV[8])
local over = redis.call('ZCARD', base .. 'c') - tonumber(ARGV[5])
local old = {}
if over > 0 then
  old = redis.call('ZRANGE', base .. 'c', 0, math.min(over, bound) - 1)
else
  old = redis.call('ZRANGEBYSCORE', base .. 'c', '-inf', now - tonumber(ARGV[6]), 'LIMIT', 0, bound)
end
for _, gone in ipairs(old) do
  redis.call('DEL', base .. 'j:' .. gone)
  redis.call('ZREM', base .. 'c', gone)
end
return {1}
