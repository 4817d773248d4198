-- ack.lua — leased jobs finished (POST /jobs/{id}/ack, the queue trigger's batched acks).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  completed jobs kept (by count)
-- ARGV[3]  completed jobs kept (by age, ms)
-- ARGV[4]  events stream MAXLEN
-- ARGV[5]  trim bound: at most this many old jobs deleted per call
-- ARGV[6..] per job: id, lease token, result (JSON text, "" = none)
--
-- Keys used: j:<id>, a, c (completed zset by finish time), stats (processed_total), lat
-- ("r<bucket>": run time histogram), ev.
--
-- Reply: per job, in order: "" done, or the job's status when its lease is not current
-- (stale, expired and re-claimed, or the job was cancelled; nothing written for it), or
-- "unknown".
local base = KEYS[1]
local now = tonumber(ARGV[1])
local out = {}
local done = 0
for i = 6, #ARGV, 3 do
  local id = ARGV[i]
  local jk = base .. 'j:' .. id
  local state = redis.call('HMGET', jk, 'status', 'lease', 'claimed_ms')
  if state[1] ~= 'active' or state[2] ~= ARGV[i + 1] then
    out[#out + 1] = state[1] or 'unknown'
  else
    redis.call('HSET', jk, 'status', 'completed', 'finished_ms', now, 'result', ARGV[i + 2], 'lease', '')
    redis.call('ZREM', base .. 'a', id)
    redis.call('ZADD', base .. 'c', now, id)
    local run = math.max(0, now - tonumber(state[3] or now))
    redis.call('HINCRBY', base .. 'lat', 'r' .. math.floor(4 * math.log(run + 1) / math.log(2)), 1)
    redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[4], '*', 'event', 'completed', 'id', id, 'ms', now)
    done = done + 1
    out[#out + 1] = ''
  end
end
if done > 0 then
  redis.call('HINCRBY', base .. 'stats', 'processed_total', done)
  -- Retention: by count, then by age; bounded work per call.
  local bound = tonumber(ARGV[5])
  local over = redis.call('ZCARD', base .. 'c') - tonumber(ARGV[2])
  local old = {}
  if over > 0 then
    old = redis.call('ZRANGE', base .. 'c', 0, math.min(over, bound) - 1)
  else
    old = redis.call('ZRANGEBYSCORE', base .. 'c', '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, bound)
  end
  for _, gone in ipairs(old) do
    redis.call('DEL', base .. 'j:' .. gone)
  end
  if #old > 0 then
    redis.call('ZREM', base .. 'c', unpack(old))
  end
end
return out
