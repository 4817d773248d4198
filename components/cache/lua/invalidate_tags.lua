-- invalidate_tags.lua — remove every entry carrying any of the given tags.
--
-- KEYS[1]    namespace version <prefix>c{<ns>}:v   (must end in "v", see below)
-- KEYS[2]    live-entry index  <prefix>c{<ns>}:i
-- KEYS[3]    events stream     <prefix>c{<ns>}:ev  (the channel `cache.<ns>`)
-- KEYS[4..]  tag sets          <prefix>c{<ns>}:t:<tag>
-- ARGV[1]    now_ms (caller's clock)
-- ARGV[2]    the namespace (for the event)
-- ARGV[3]    events stream MAXLEN (approximate)
-- ARGV[4]    events stream retention, ms (PEXPIRE after each event)
-- ARGV[5..]  the tags; ARGV[i + 1] is the tag of KEYS[i]
--
-- Entry keys are dynamic (the members of the tag sets), so they are derived from KEYS[1] by
-- string operations only: dropping its final "v" leaves "<prefix>c{<ns>}:", which keeps the
-- host's sandbox prefix and the hash tag; "d:<member>" (entry) and "r:<member>" (its
-- revalidate claim) are appended. Members are key suffixes, never full key names.
--
-- A member is removed only if its entry still carries the tag (a tag line of the entry's
-- header, see src/record.rs): an entry re-set without the tag survives. Only live entries of
-- the current version are counted.
--
-- Every call appends one `invalidate` event (`{"ns","tags","invalidated"}`) to the
-- namespace's events stream.
--
-- Reply: {n} the number of live entries removed.
local now = tonumber(ARGV[1])
local base = string.sub(KEYS[1], 1, -2)
local version = redis.call('GET', KEYS[1]) or '0'

-- The header: "<v> <st> <fu> <su> <n>\n<content type>\n" then n lines, one per tag.
local function carries(e, tag)
  local first = string.find(e, '\n', 1, true)
  if not first then return false end
  local n = tonumber(string.match(string.sub(e, 1, first - 1), ' (%d+)$'))
  local pos = string.find(e, '\n', first + 1, true)
  for _ = 1, n or 0 do
    if not pos then return false end
    local stop = string.find(e, '\n', pos + 1, true)
    if not stop then return false end
    if string.sub(e, pos + 1, stop - 1) == tag then return true end
    pos = stop
  end
  return false
end

local removed = 0
local tags = {}
for i = 4, #KEYS do
  local tag = ARGV[i + 1]
  tags[#tags + 1] = tag
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, member in ipairs(members) do
    local entry_key = base .. 'd:' .. member
    local e = redis.call('GET', entry_key)
    if e and carries(e, tag) then
      local v, su = string.match(e, '^(%d+) %d+ %d+ (%d+) ')
      if v == version and now < tonumber(su) then removed = removed + 1 end
      redis.call('DEL', entry_key, base .. 'r:' .. member)
      redis.call('ZREM', KEYS[2], member)
    end
  end
  redis.call('UNLINK', KEYS[i])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'event', 'invalidate',
  'data', cjson.encode({ns = ARGV[2], tags = tags, invalidated = removed}))
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {removed}
