-- events.lua — where a queue's event stream starts (GET /v1/queues/{queue}/events).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:   (events stream `ev`)
-- ARGV[1]  after: the client's Last-Event-ID ('' for a new client: live events only)
-- ARGV[2]  most events to replay
--
-- Reply:
--   {'live', last_id}                         a new client: follow after the newest event
--   {'reset', last_id}                        `after` was trimmed away (or is unknown)
--   {'replay', last_id, id, n, f1, v1, ..., id, n, ...}   the events after `after`, oldest
--                                            first, each with its n field/value pairs
local sk = KEYS[1] .. 'ev'
local newest = redis.call('XREVRANGE', sk, '+', '-', 'COUNT', 1)
local last_id = newest[1] and newest[1][1] or '0-0'
local after = ARGV[1]
if after == '' then
  return {'live', last_id}
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local oldest = redis.call('XRANGE', sk, '-', '+', 'COUNT', 1)
local first_id = oldest[1] and oldest[1][1] or last_id
if less(after, first_id) and after ~= '0-0' or less(last_id, after) then
  return {'reset', last_id}
end
local reply = {'replay', after}
for _, e in ipairs(redis.call('XRANGE', sk, '(' .. after, '+', 'COUNT', tonumber(ARGV[2]))) do
  reply[2] = e[1]
  table.insert(reply, e[1])
  table.insert(reply, #e[2] / 2)
  for _, v in ipairs(e[2]) do
    table.insert(reply, v)
  end
end
return reply
