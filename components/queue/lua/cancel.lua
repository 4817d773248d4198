-- cancel.lua — cancel a job (DELETE /jobs/{id}).
--
-- A waiting, delayed or retrying job is cancelled at once. An active one is cancelled too:
-- its lease stops being current, so the worker's next heartbeat or ack gets 409, and the
-- redwasm host interrupts its handler.
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  job id
-- ARGV[3]  cancelled jobs kept (by count)
-- ARGV[4]  events stream MAXLEN
--
-- Keys used: j:<id>, w, d, f, a, x (cancelled zset by time), ev.
--
-- Reply: {1, previous status}; {0, status} already finished (completed, dead, cancelled);
-- {0, "unknown"} no such job.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local id = ARGV[2]
local jk = base .. 'j:' .. id
local status = redis.call('HGET', jk, 'status')
if not status then
  return {0, 'unknown'}
end
if status == 'completed' or status == 'dead' or status == 'cancelled' then
  return {0, status}
end
redis.call('ZREM', base .. 'w', id)
redis.call('ZREM', base .. 'd', id)
redis.call('SREM', base .. 'f', id)
redis.call('ZREM', base .. 'a', id)
redis.call('HSET', jk, 'status', 'cancelled', 'finished_ms', now, 'lease', '')
redis.call('ZADD', base .. 'x', now, id)
redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[4], '*', 'event', 'cancelled', 'id', id, 'ms', now)
local over = redis.call('ZCARD', base .. 'x') - tonumber(ARGV[3])
if over > 0 then
  for _, gone in ipairs(redis.call('ZRANGE', base .. 'x', 0, math.min(over, 1000) - 1)) do
    redis.call('DEL', base .. 'j:' .. gone)
    redis.call('ZREM', base .. 'x', gone)
  end
end
return {1, status}
