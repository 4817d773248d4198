-- claim.lua — lease up to `max` jobs to a worker (POST /claim, the queue trigger).
--
-- Before popping, the claim itself does the sweeping no separate process has to: due delayed
-- (and retrying) jobs become waiting, and jobs whose lease expired go back to waiting, or to
-- the dead letters when that was their last attempt. Both are bounded per call.
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  max jobs to claim
-- ARGV[3]  lease_ms
-- ARGV[4]  worker name
-- ARGV[5]  lease token prefix (random; the lease of the i-th job is "<prefix>.<i>")
-- ARGV[6]  events stream MAXLEN
-- ARGV[7]  sweep bound: at most this many delayed and this many expired jobs per call
-- ARGV[8]  dead letters kept (oldest dropped beyond)
--
-- Keys used: w, d, a (active zset, score = lease deadline), f (set of retrying jobs), dead
-- (zset by time of death), j:<id>, seq, lat (latency histogram hash: "w<bucket>" counts),
-- stats (hash: dead_total), ev.
--
-- Reply: the next due time of a delayed job or schedule (0: none); the number of due
-- schedules, then each one's name and tick (src/queue.rs fires them: see schedule.rs);
-- then per claimed job: id, lease, the job hash as a JSON object.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[3])
local bound = tonumber(ARGV[7])

local function score(priority)
  local seq = redis.call('INCR', base .. 'seq')
  return (1000 - priority) * 2199023255552 + seq
end

local function event(name, id)
  redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[6], '*', 'event', name, 'id', id, 'ms', now)
end

local function to_waiting(id, jk)
  local priority = tonumber(redis.call('HGET', jk, 'priority'))
  if not priority then
    return
  end
  redis.call('HSET', jk, 'status', 'waiting', 'available_ms', now, 'lease', '')
  redis.call('ZADD', base .. 'w', score(priority), id)
end

-- Due delayed and retrying jobs.
local due = redis.call('ZRANGEBYSCORE', base .. 'd', '-inf', now, 'LIMIT', 0, bound)
for _, id in ipairs(due) do
  redis.call('ZREM', base .. 'd', id)
  redis.call('SREM', base .. 'f', id)
  to_waiting(id, base .. 'j:' .. id)
  event('waiting', id)
end

-- Expired leases: the worker died or stalled; that attempt is spent.
local expired = redis.call('ZRANGEBYSCORE', base .. 'a', '-inf', now, 'LIMIT', 0, bound)
for _, id in ipairs(expired) do
  redis.call('ZREM', base .. 'a', id)
  local jk = base .. 'j:' .. id
  local state = redis.call('HMGET', jk, 'attempts', 'max_attempts')
  if state[1] then
    if tonumber(state[1]) >= tonumber(state[2]) then
      redis.call('HSET', jk, 'status', 'dead', 'error', 'stalled: lease expired',
        'finished_ms', now, 'lease', '')
      redis.call('ZADD', base .. 'dead', now, id)
      redis.call('HINCRBY', base .. 'stats', 'failed_total', 1)
      redis.call('HINCRBY', base .. 'stats', 'dead_total', 1)
      event('dead', id)
    else
      redis.call('HSET', jk, 'error', 'stalled: lease expired')
      to_waiting(id, jk)
      event('stalled', id)
    end
  end
end
local dead_over = redis.call('ZCARD', base .. 'dead') - tonumber(ARGV[8])
if dead_over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', base .. 'dead', 0, math.min(dead_over, bound) - 1)) do
    redis.call('DEL', base .. 'j:' .. id)
    redis.call('ZREM', base .. 'dead', id)
  end
end

-- Claim.
local next_due = tonumber(redis.call('ZRANGE', base .. 'd', 0, 0, 'WITHSCORES')[2] or 0)
local next_sched = tonumber(redis.call('ZRANGE', base .. 'sn', 0, 0, 'WITHSCORES')[2] or 0)
if next_sched > 0 and (next_due == 0 or next_sched < next_due) then
  next_due = next_sched
end
local due_sched = redis.call('ZRANGEBYSCORE', base .. 'sn', '-inf', now, 'WITHSCORES', 'LIMIT', 0, 16)
local out = {next_due, #due_sched / 2}
for _, v in ipairs(due_sched) do
  out[#out + 1] = v
end
local popped = redis.call('ZPOPMIN', base .. 'w', tonumber(ARGV[2]))
local n = 0
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = base .. 'j:' .. id
  local available = redis.call('HGET', jk, 'available_ms')
  if available then
    n = n + 1
    local lease = ARGV[5] .. '.' .. n
    redis.call('HINCRBY', jk, 'attempts', 1)
    redis.call('HSETNX', jk, 'started_ms', now)
    redis.call('HSET', jk, 'status', 'active', 'lease', lease, 'lease_until', now + lease_ms,
      'claimed_ms', now, 'worker', ARGV[4])
    redis.call('ZADD', base .. 'a', now + lease_ms, id)
    local wait = math.max(0, now - tonumber(available))
    redis.call('HINCRBY', base .. 'lat', 'w' .. math.floor(4 * math.log(wait + 1) / math.log(2)), 1)
    event('active', id)
    local flat = redis.call('HGETALL', jk)
    local job = {}
    for k = 1, #flat, 2 do
      job[flat[k]] = flat[k + 1]
    end
    out[#out + 1] = id
    out[#out + 1] = lease
    out[#out + 1] = cjson.encode(job)
  end
end
return out
