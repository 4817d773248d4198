-- nack.lua — a leased job failed (POST /jobs/{id}/nack, the queue trigger).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  job id
-- ARGV[3]  lease token
-- ARGV[4]  error text
-- ARGV[5]  "1" = retry if attempts remain, "0" = dead now
-- ARGV[6]  jitter, a uniform random number in [0, 1) drawn by the caller
-- ARGV[7]  dead letters kept
-- ARGV[8]  events stream MAXLEN
--
-- The retry delay comes from the job's backoff (JSON {"type":"exponential"|"fixed",
-- "base_ms","max_ms"}): fixed = base, exponential = base * 2^(attempts-1); capped by max_ms;
-- then "equal jitter": half of it fixed, half uniform.
--
-- Keys used: j:<id>, a, d, f (retrying set), dead, stats (failed_total, dead_total), ev.
--
-- Reply: {1, "failed", due_ms} retried later; {1, "dead"}; {0, status} the lease is not
-- current: nothing written.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local id = ARGV[2]
local jk = base .. 'j:' .. id
local state = redis.call('HMGET', jk, 'status', 'lease', 'attempts', 'max_attempts', 'backoff')
if state[1] ~= 'active' or state[2] ~= ARGV[3] then
  return {0, state[1] or 'unknown'}
end
redis.call('ZREM', base .. 'a', id)
redis.call('HINCRBY', base .. 'stats', 'failed_total', 1)
local attempts = tonumber(state[3])
if ARGV[5] == '1' and attempts < tonumber(state[4]) then
  local backoff = cjson.decode(state[5])
  local delay = backoff.base_ms
  if backoff.type == 'exponential' then
    delay = backoff.base_ms * 2 ^ (attempts - 1)
  end
  delay = math.min(delay, backoff.max_ms)
  delay = math.floor(delay / 2 + delay / 2 * tonumber(ARGV[6]))
  local due = now + delay
  redis.call('HSET', jk, 'status', 'failed', 'error', ARGV[4], 'lease', '', 'run_at_ms', due)
  redis.call('ZADD', base .. 'd', due, id)
  redis.call('SADD', base .. 'f', id)
  redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[8], '*', 'event', 'failed', 'id', id, 'ms', now)
  return {1, 'failed', due}
end
redis.call('HSET', jk, 'status', 'dead', 'error', ARGV[4], 'finished_ms', now, 'lease', '')
redis.call('ZADD', base .. 'dead', now, id)
redis.call('HINCRBY', base .. 'stats', 'dead_total', 1)
redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[8], '*', 'event', 'dead', 'id', id, 'ms', now)
local over = redis.call('ZCARD', base .. 'dead') - tonumber(ARGV[7])
if over > 0 then
  for _, gone in ipairs(redis.call('ZRANGE', base .. 'dead', 0, over - 1)) do
    redis.call('DEL', base .. 'j:' .. gone)
    redis.call('ZREM', base .. 'dead', gone)
  end
end
return {1, 'dead'}
