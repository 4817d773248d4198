-- events.lua — where an event stream starts (GET /v1/progress/{id}/events).
--
-- KEYS[1]  the entry's key base  <prefix>p{<id>}:
-- ARGV[1]  after: the client's Last-Event-ID ('' for a new client)
-- ARGV[2]  most events to replay
--
-- Reply:
--   {0}                                      no such entry (or expired)
--   {1, 'snapshot', json, last_id}            a new client: the entry as it is now
--   {1, 'reset', json, last_id}               `after` was trimmed away (or is unknown):
--                                            events may be lost, so a fresh snapshot
--   {1, 'replay', json, last_id, id, event, data, ...}   the events after `after`, oldest
--                                            first (at most ARGV[2]); last_id is the last one
--                                            replayed (or `after` when there are none)
local base = KEYS[1]
local ek, sk = base .. 'e', base .. 's'
local json = redis.call('HGET', ek, 'json')
if not json then
  return {0}
end
local newest = redis.call('XREVRANGE', sk, '+', '-', 'COUNT', 1)
local last_id = newest[1] and newest[1][1] or '0-0'
local after = ARGV[1]
if after == '' then
  return {1, 'snapshot', json, last_id}
end

-- Stream ids compare as (ms, seq) number pairs.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

-- Trimming (MAXLEN) removes from the head without recording it (max-deleted-entry-id
-- moves only on XDEL), so a client behind the first entry still held may have missed
-- something: reset. One whose id was XDEL'd, or that is ahead of the stream: reset too.
local oldest = redis.call('XRANGE', sk, '-', '+', 'COUNT', 1)
local first_id = oldest[1] and oldest[1][1] or last_id
local info = redis.call('XINFO', 'STREAM', sk)
local max_deleted = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then
    max_deleted = info[i + 1]
  end
end
if less(after, first_id) or less(after, max_deleted) or less(last_id, after) then
  return {1, 'reset', json, last_id}
end
local reply = {1, 'replay', json, after}
local events = redis.call('XRANGE', sk, '(' .. after, '+', 'COUNT', tonumber(ARGV[2]))
for _, e in ipairs(events) do
  local fields = e[2]
  local event, data = '', ''
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then event = fields[i + 1] end
    if fields[i] == 'data' then data = fields[i + 1] end
  end
  reply[4] = e[1]
  table.insert(reply, e[1])
  table.insert(reply, event)
  table.insert(reply, data)
end
return reply
