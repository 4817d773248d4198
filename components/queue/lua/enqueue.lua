-- enqueue.lua — add jobs (POST /jobs, /jobs/batch, typed `enqueue`).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:   (every key below is built from it, so
--          all share the hash tag and the component's ACL key pattern)
-- ARGV[1]  now_ms (caller's clock)
-- ARGV[2]  idempotency retention, ms
-- ARGV[3]  events stream MAXLEN (approximate)
-- ARGV[4..] one JSON object per job, built by src/queue.rs: id, type, payload (JSON text),
--          priority (int), run_at_ms (0 = now), max_attempts, timeout_ms, backoff (JSON
--          text), idem ("" = none), correlation
--
-- Keys used: j:<id> (job hash), w (waiting zset, score = priority rank * 2^41 + seq), d
-- (delayed zset, score = due ms), seq (counter), i:<idem> (idempotency: job id, PX
-- retention), ev (events stream).
--
-- Reply: per job: id, outcome ("waiting" | "delayed" | "duplicate"; a duplicate's id is
-- the first job's).
local base = KEYS[1]
local now = tonumber(ARGV[1])
local out = {}

local function score(priority)
  local seq = redis.call('INCR', base .. 'seq')
  return (1000 - priority) * 2199023255552 + seq
end

for i = 4, #ARGV do
  local job = cjson.decode(ARGV[i])
  local duplicate = nil
  if job.idem ~= '' then
    local ik = base .. 'i:' .. job.idem
    duplicate = redis.call('GET', ik)
    if not duplicate then
      redis.call('SET', ik, job.id, 'PX', ARGV[2])
    end
  end
  if duplicate then
    out[#out + 1] = duplicate
    out[#out + 1] = 'duplicate'
  else
    local status = 'waiting'
    if job.run_at_ms > now then
      status = 'delayed'
    end
    redis.call('HSET', base .. 'j:' .. job.id,
      'id', job.id, 'type', job.type, 'payload', job.payload, 'priority', job.priority,
      'status', status, 'attempts', 0, 'max_attempts', job.max_attempts,
      'created_ms', now, 'available_ms', math.max(now, job.run_at_ms),
      'timeout_ms', job.timeout_ms, 'backoff', job.backoff, 'idem', job.idem,
      'correlation', job.correlation)
    if status == 'delayed' then
      redis.call('ZADD', base .. 'd', job.run_at_ms, job.id)
    else
      redis.call('ZADD', base .. 'w', score(job.priority), job.id)
    end
    redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[3], '*',
      'event', status, 'id', job.id, 'ms', now)
    out[#out + 1] = job.id
    out[#out + 1] = status
  end
end
-- Wake a worker blocked on the notification list (one token at most), and tell Spin's
-- Redis trigger (a worker subscribed to "<base>notify"; at most once, so every notification
-- drains whatever is due, not one job).
if #out > 0 then
  redis.call('LPUSH', base .. 'n', 1)
  redis.call('LTRIM', base .. 'n', 0, 0)
  redis.call('PUBLISH', base .. 'notify', #out / 2)
end
return out
