-- start.lua — create a progress entry (POST /v1/progress).
--
-- KEYS[1]  the entry's key base  <prefix>p{<id>}:   (entry hash `e`, events stream `s`)
-- ARGV[1]  now_ms
-- ARGV[2]  id
-- ARGV[3]  correlation_id ('' for none)
-- ARGV[4]  total_steps (>= 1)
-- ARGV[5]  message ('' for none)
-- ARGV[6]  ttl_ms: both keys expire this long after the last change
-- ARGV[7]  stream_maxlen: the events stream is trimmed to about this many entries
--
-- Reply: the entry as JSON; or {0, 'exists'} when the id is taken.
local base = KEYS[1]
local ek, sk = base .. 'e', base .. 's'
if redis.call('EXISTS', ek) == 1 then
  return {0, 'exists'}
end
local now = tonumber(ARGV[1])
local entry = {
  id = ARGV[2],
  correlation_id = ARGV[3] ~= '' and ARGV[3] or cjson.null,
  status = 'running',
  total_steps = tonumber(ARGV[4]),
  current_step = 0,
  percent = 0,
  message = ARGV[5] ~= '' and ARGV[5] or cjson.null,
  started_ms = now,
  updated_ms = now,
  estimated_completion_ms = cjson.null,
}
local json = cjson.encode(entry)
redis.call('HSET', ek, 'json', json, 'status', 'running', 'total', ARGV[4], 'current', 0,
  'started', now, 'ttl_ms', ARGV[6], 'maxlen', ARGV[7])
local id = redis.call('XADD', sk, 'MAXLEN', '~', ARGV[7], '*', 'event', 'progress', 'data', json)
redis.call('PEXPIRE', ek, ARGV[6])
redis.call('PEXPIRE', sk, ARGV[6])
return {1, json, id}
