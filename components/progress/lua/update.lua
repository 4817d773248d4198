-- update.lua — record a step (POST /v1/progress/{id}) or finish the entry
-- (POST /v1/progress/{id}/complete | /fail).
--
-- KEYS[1]  the entry's key base  <prefix>p{<id>}:
-- ARGV[1]  now_ms
-- ARGV[2]  event: 'progress', 'completed' or 'failed'
-- ARGV[3]  step ('' to keep the current one; ignored for 'failed'; 'completed' sets total)
-- ARGV[4]  message ('' to keep the current one)
-- ARGV[5]  percent ('' to derive it from step / total)
--
-- The estimated completion extrapolates the average time per step so far:
-- updated + (updated - started) / current * (total - current), while running.
--
-- Reply: {1, entry json, stream id}; {0, 'unknown'} no such entry (or expired);
-- {0, 'finished', status} the entry is completed or failed already;
-- {0, 'step', total} the step is beyond total_steps.
local base = KEYS[1]
local ek, sk = base .. 'e', base .. 's'
local state = redis.call('HMGET', ek, 'json', 'status', 'total', 'current', 'started', 'ttl_ms',
  'maxlen')
if not state[1] then
  return {0, 'unknown'}
end
if state[2] ~= 'running' then
  return {0, 'finished', state[2]}
end
local now = tonumber(ARGV[1])
local event = ARGV[2]
local total = tonumber(state[3])
local current = tonumber(state[4])
if ARGV[3] ~= '' then
  local step = tonumber(ARGV[3])
  if step > total then
    return {0, 'step', total}
  end
  current = step
end
if event == 'completed' then
  current = total
end
local entry = cjson.decode(state[1])
entry.current_step = current
entry.updated_ms = now
if ARGV[4] ~= '' then
  entry.message = ARGV[4]
end
if ARGV[5] ~= '' then
  entry.percent = tonumber(ARGV[5])
else
  entry.percent = math.floor(current * 10000 / total) / 100
end
if event == 'progress' then
  local started = tonumber(state[5])
  if current > 0 and current < total then
    entry.estimated_completion_ms = math.floor(now + (now - started) / current * (total - current))
  elseif current >= total then
    entry.estimated_completion_ms = now
  else
    entry.estimated_completion_ms = cjson.null
  end
else
  entry.status = event
  entry.estimated_completion_ms = cjson.null
  if event == 'completed' then
    entry.percent = 100
  end
end
local json = cjson.encode(entry)
redis.call('HSET', ek, 'json', json, 'status', entry.status, 'current', current)
local id = redis.call('XADD', sk, 'MAXLEN', '~', state[7], '*', 'event', event, 'data', json)
redis.call('PEXPIRE', ek, state[6])
redis.call('PEXPIRE', sk, state[6])
return {1, json, id}
