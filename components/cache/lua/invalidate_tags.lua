-- invalidate_tags.lua — remove every entry carrying any of the given tags.
--
-- KEYS[1]    namespace version <prefix>c{<ns>}:v   (must end in "v", see below)
-- KEYS[2]    live-entry index  <prefix>c{<ns>}:i
-- KEYS[3..]  tag sets          <prefix>c{<ns>}:t:<tag>
-- ARGV[1]    now_ms (caller's clock)
-- ARGV[2..]  the tags; ARGV[i] is the tag of KEYS[i + 1]
--
-- Entry keys are dynamic (the members of the tag sets), so they are derived from KEYS[1] by
-- string operations only: dropping its final "v" leaves "<prefix>c{<ns>}:", which keeps the
-- host's sandbox prefix and the hash tag; "e:<member>" is appended. Members are key
-- suffixes, never full key names.
--
-- A member is removed only if its entry still carries the tag (field "t:<tag>"): an entry
-- re-set without the tag survives. Only live entries of the current version are counted.
--
-- Reply: {n} the number of live entries removed.
local now = tonumber(ARGV[1])
local base = string.sub(KEYS[1], 1, -2)
local version = redis.call('GET', KEYS[1]) or '0'
local removed = 0
for i = 3, #KEYS do
  local tag_field = 't:' .. ARGV[i - 1]
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, member in ipairs(members) do
    local entry_key = base .. 'e:' .. member
    local e = redis.call('HMGET', entry_key, tag_field, 'v', 'su')
    if e[1] then
      if e[2] == version and now < tonumber(e[3]) then removed = removed + 1 end
      redis.call('DEL', entry_key)
      redis.call('ZREM', KEYS[2], member)
    end
  end
  redis.call('UNLINK', KEYS[i])
end
return {removed}
