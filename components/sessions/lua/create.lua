-- create.lua — store a new session (POST /v1/sessions).
--
-- KEYS[1]  the session key  <prefix>s{<hash of the session id>}
-- ARGV[1]  now_ms
-- ARGV[2]  user_id
-- ARGV[3]  data (JSON text)
-- ARGV[4]  ttl_ms: the session expires this long after its last use
--
-- Reply: {1, expires_ms}; {0} when the key exists (a 128-bit id collided: never in practice).
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  return {0}
end
local now = tonumber(ARGV[1])
local expires = now + tonumber(ARGV[4])
redis.call('HSET', key, 'user_id', ARGV[2], 'data', ARGV[3], 'created_ms', now,
  'expires_ms', expires, 'version', 1, 'ttl_ms', ARGV[4])
-- Relative expiry: Redis's clock, not the caller's, decides when the key goes.
redis.call('PEXPIRE', key, ARGV[4])
return {1, expires}
