-- set.lua — store one entry (PUT / typed `set`).
--
-- KEYS[1]     entry             <prefix>c{<ns>}:d:<key>   (string, see src/record.rs)
-- KEYS[2]     namespace version <prefix>c{<ns>}:v
-- KEYS[3]     live-entry index  <prefix>c{<ns>}:i   (zset: member key, score stale_until_ms)
-- KEYS[4]     lease             <prefix>c{<ns>}:l:<key>
-- KEYS[5]     revalidate claim  <prefix>c{<ns>}:r:<key>
-- KEYS[6..]   tag sets          <prefix>c{<ns>}:t:<tag>, one per tag
-- ARGV[1]     now_ms (caller's clock)
-- ARGV[2]     stale_until_ms; the entry's PEXPIRE is stale_until - now
-- ARGV[3]     the entry's header after "<version> " (stored, fresh-until and stale-until
--             times, content type, tags), built by the caller
-- ARGV[4]     body bytes
-- ARGV[5]     if-match token, "" = unconditional. Accepted while it is the current lease
--             of this key, or the revalidate claim of the current live entry.
-- ARGV[6]     the key (member of the index and of the tag sets)
--
-- Reply: {1} stored; {0} the if-match token is not current (nothing written).
local now = tonumber(ARGV[1])
local stale_until = tonumber(ARGV[2])
local version = redis.call('GET', KEYS[2]) or '0'

if ARGV[5] ~= '' then
  local current = redis.call('GET', KEYS[4]) == ARGV[5]
  if not current and redis.call('GET', KEYS[5]) == ARGV[5] then
    local e = redis.call('GET', KEYS[1])
    if e then
      local v, su = string.match(e, '^(%d+) %d+ %d+ (%d+) ')
      current = v == version and now < tonumber(su)
    end
  end
  if not current then return {0} end
end

local ttl = stale_until - now
if ttl < 1 then ttl = 1 end

-- Replace, never merge; the old entry's revalidation claim must not survive it.
redis.call('SET', KEYS[1], version .. ' ' .. ARGV[3] .. ARGV[4], 'PX', ttl)
redis.call('DEL', KEYS[5])

-- Keeps a set's TTL at least as long as its longest-lived member needs.
local function extend(key)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end

-- Trim members whose grace ended (amortised: each is removed once), then index this one.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], stale_until, ARGV[6])
extend(KEYS[3])

for i = 6, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[6])
  extend(KEYS[i])
end

-- A successful fill releases the lease (waiters see the value on their next poll).
redis.call('DEL', KEYS[4])
return {1}
