-- set.lua — store one entry (PUT / typed `set`).
--
-- KEYS[1]     entry hash        <prefix>c{<ns>}:e:<key>
-- KEYS[2]     namespace version <prefix>c{<ns>}:v
-- KEYS[3]     live-entry index  <prefix>c{<ns>}:i   (zset: member key, score stale_until_ms)
-- KEYS[4]     lease             <prefix>c{<ns>}:l:<key>
-- KEYS[5..]   tag sets          <prefix>c{<ns>}:t:<tag>, one per tag, same order as ARGV[8..]
-- ARGV[1]     now_ms (caller's clock)
-- ARGV[2]     fresh_until_ms (now + ttl + jitter)
-- ARGV[3]     stale_until_ms (fresh_until + swr); the entry's PEXPIRE is stale_until - now
-- ARGV[4]     body bytes
-- ARGV[5]     content type
-- ARGV[6]     if-match token, "" = unconditional. Accepted while it is the current lease
--             of this key, or the revalidate token of the current live entry.
-- ARGV[7]     the key (member of the index and of the tag sets)
-- ARGV[8..]   tags (each also stored as a field "t:<tag>" so tag invalidation can check
--             that the entry still carries the tag)
--
-- Reply: {1} stored; {0} the if-match token is not current (nothing written).
local now = tonumber(ARGV[1])
local stale_until = tonumber(ARGV[3])
local version = redis.call('GET', KEYS[2]) or '0'

if ARGV[6] ~= '' then
  local current = redis.call('GET', KEYS[4]) == ARGV[6]
  if not current then
    local e = redis.call('HMGET', KEYS[1], 'rv', 'v', 'su')
    current = e[1] == ARGV[6] and e[2] == version and now < tonumber(e[3])
  end
  if not current then return {0} end
end

local ttl = stale_until - now
if ttl < 1 then ttl = 1 end

-- Replace, never merge: old tag fields and the revalidation claim must not survive.
redis.call('DEL', KEYS[1])
local fields = {'b', ARGV[4], 'ct', ARGV[5], 'st', ARGV[1], 'fu', ARGV[2], 'su', ARGV[3], 'v', version}
for i = 8, #ARGV do
  fields[#fields + 1] = 't:' .. ARGV[i]
  fields[#fields + 1] = '1'
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ttl)

-- Keeps a set's TTL at least as long as its longest-lived member needs.
local function extend(key)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end

-- Trim members whose grace ended (amortised: each is removed once), then index this one.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], stale_until, ARGV[7])
extend(KEYS[3])

for i = 5, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[7])
  extend(KEYS[i])
end

-- A successful fill releases the lease (waiters see the value on their next poll).
redis.call('DEL', KEYS[4])
return {1}
