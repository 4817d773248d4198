-- start.lua — where a client's event stream starts (GET /v1/events/{channel}). Read-only:
-- run by EVALSHA_RO, so it may read a channel another component writes (the redwasm host's
-- read grants; Redis refuses any write from it).
--
-- KEYS[1]  the channel's stream
-- ARGV[1]  after: the client's Last-Event-ID ('' for a new client)
-- ARGV[2]  most events to replay
--
-- Reply (flat):
--   {'live', last_id}      a new client: the events after last_id (the newest) follow
--   {'reset', last_id}     `after` is unknown, or events after it were trimmed away: the
--                          client may have missed some, so it is told instead of a silent gap
--   {'replay', last_id, id, n, field, value, ..., id, n, ...}
--                          the events after `after`, oldest first (at most ARGV[2]), each with
--                          its n field/value pairs; last_id is the last one replayed (`after`
--                          when there are none)
--
-- Telling a gap from none: Redis 7 keeps `entries-added`, `recorded-first-entry-id` and
-- `max-deleted-entry-id`. Trimming removes the oldest entries, so when any entry was ever
-- removed and `after` is older than the oldest kept, some event after `after` may be gone.
-- (`after` being exactly the newest trimmed entry also resets: conservative, never a loss.)
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local after = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  if after == '' then return {'live', '0-0'} end
  return {'reset', '0-0'}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local f = {}
for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
local last = f['last-generated-id']
if after == '' then return {'live', last} end

local lost = less(last, after) or less(after, f['max-deleted-entry-id'] or '0-0')
local removed = tonumber(f['entries-added'] or 0) - tonumber(f['length'])
if removed > 0 then
  if tonumber(f['length']) == 0 then
    lost = lost or less(after, last)
  else
    lost = lost or less(after, f['recorded-first-entry-id'] or '0-0')
  end
end
if lost then return {'reset', last} end

local entries = redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', ARGV[2])
local out = {'replay', after}
for _, e in ipairs(entries) do
  out[#out + 1] = e[1]
  out[#out + 1] = #e[2] / 2
  for _, x in ipairs(e[2]) do out[#out + 1] = x end
  out[2] = e[1]
end
return out
