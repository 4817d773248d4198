-- get.lua — one cache read, the whole counted GET in a single round trip:
-- namespace version check, entry, stats counters, revalidation claim, lease.
-- (A fresh hit can also be read without this script: one MGET of KEYS[1] and KEYS[2],
-- see `Cache::get_uncounted`.)
--
-- KEYS[1]  entry             <prefix>c{<ns>}:d:<key>   (string, see src/record.rs)
-- KEYS[2]  namespace version <prefix>c{<ns>}:v
-- KEYS[3]  stats hash        <prefix>c{<ns>}:s
-- KEYS[4]  lease             <prefix>c{<ns>}:l:<key>
-- KEYS[5]  revalidate claim  <prefix>c{<ns>}:r:<key>
-- ARGV[1]  now_ms, from the caller's clock (never Redis TIME)
-- ARGV[2]  a fresh random token: becomes the revalidate token (stale hit, first reader
--          of this expiry) or the lease token (miss with a lease requested)
-- ARGV[3]  lease_ms: 0 = plain read; > 0 = on a miss try to take the lease for that long
-- ARGV[4]  "1" = count the outcome in the stats hash, "0" = don't (lease-wait polls)
--
-- Reply, always a flat array of scalars (the host flattens arrays):
--   {1, entry, nil}        fresh hit (entry: the stored string, decoded by the caller)
--   {2, entry, token|nil}  stale hit (token for exactly one reader)
--   {0}                    miss
--   {3, token}             miss, the caller now holds the lease
--   {4}                    miss, another caller holds the lease
local now = tonumber(ARGV[1])
local count = ARGV[4] == '1'
local got = redis.call('MGET', KEYS[1], KEYS[2])
local e = got[1]
if e then
  local v, fu, su = string.match(e, '^(%d+) %d+ (%d+) (%d+) ')
  if v and v == (got[2] or '0') and now < tonumber(su) then
    if now < tonumber(fu) then
      if count then redis.call('HINCRBY', KEYS[3], 'hits', 1) end
      return {1, e, false}
    end
    -- Within the grace period: the claim key is deleted by every write of the key and
    -- expires with the entry, so there is exactly one claimant per expiry.
    local token = false
    if redis.call('SET', KEYS[5], ARGV[2], 'NX', 'PX', tonumber(su) - now) then
      token = ARGV[2]
    end
    if count then
      redis.call('HINCRBY', KEYS[3], 'hits', 1)
      redis.call('HINCRBY', KEYS[3], 'stale_hits', 1)
    end
    return {2, e, token}
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
