-- get.lua — one cache read, the whole GET hot path in a single round trip:
-- namespace version check, entry fields, stats counters, revalidation claim, lease.
--
-- KEYS[1]  entry hash        <prefix>c{<ns>}:e:<key>
-- KEYS[2]  namespace version <prefix>c{<ns>}:v
-- KEYS[3]  stats hash        <prefix>c{<ns>}:s
-- KEYS[4]  lease             <prefix>c{<ns>}:l:<key>
-- ARGV[1]  now_ms, from the caller's clock (never Redis TIME)
-- ARGV[2]  a fresh random token: becomes the revalidate token (stale hit, first reader
--          of this expiry) or the lease token (miss with a lease requested)
-- ARGV[3]  lease_ms: 0 = plain read; > 0 = on a miss try to take the lease for that long
-- ARGV[4]  "1" = count the outcome in the stats hash, "0" = don't (lease-wait polls)
--
-- Reply, always a flat array of scalars (the host flattens arrays):
--   {1, body, content_type, stored_ms, nil}        fresh hit
--   {2, body, content_type, stored_ms, token|nil}  stale hit (token for exactly one reader)
--   {0}                                             miss
--   {3, token}                                      miss, the caller now holds the lease
--   {4}                                             miss, another caller holds the lease
local now = tonumber(ARGV[1])
local count = ARGV[4] == '1'
local e = redis.call('HMGET', KEYS[1], 'b', 'ct', 'st', 'fu', 'su', 'v')
if e[1] then
  local version = redis.call('GET', KEYS[2]) or '0'
  if e[6] == version and now < tonumber(e[5]) then
    if now < tonumber(e[4]) then
      if count then redis.call('HINCRBY', KEYS[3], 'hits', 1) end
      return {1, e[1], e[2], tonumber(e[3]), false}
    end
    -- Within the grace period: the claim lives in the entry itself, so it is reset by the
    -- next write and dies with the entry ("exactly one reader per expiry").
    local token = false
    if redis.call('HSETNX', KEYS[1], 'rv', ARGV[2]) == 1 then token = ARGV[2] end
    if count then
      redis.call('HINCRBY', KEYS[3], 'hits', 1)
      redis.call('HINCRBY', KEYS[3], 'stale_hits', 1)
    end
    return {2, e[1], e[2], tonumber(e[3]), token}
  end
end
if count then redis.call('HINCRBY', KEYS[3], 'misses', 1) end
local lease_ms = tonumber(ARGV[3])
if lease_ms > 0 then
  if redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', lease_ms) then
    return {3, ARGV[2]}
  end
  return {4}
end
return {0}
