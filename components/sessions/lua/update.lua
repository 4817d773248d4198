-- update.lua — replace a session's data when its version is the expected one
-- (PUT /v1/sessions/{sid} with If-Match); the expiry slides.
--
-- KEYS[1]  the session key  <prefix>s{<hash of the session id>}
-- ARGV[1]  now_ms
-- ARGV[2]  expected version ('' for an unconditional update)
-- ARGV[3]  data (JSON text)
--
-- Reply: {1, version, expires_ms, user_id, created_ms}; {0, 'unknown'};
-- {0, 'version', current version} when the expected version is stale.
local key = KEYS[1]
local s = redis.call('HMGET', key, 'version', 'ttl_ms', 'user_id', 'created_ms')
if not s[1] then
  return {0, 'unknown'}
end
if ARGV[2] ~= '' and ARGV[2] ~= s[1] then
  return {0, 'version', tonumber(s[1])}
end
local version = tonumber(s[1]) + 1
local expires = tonumber(ARGV[1]) + tonumber(s[2])
redis.call('HSET', key, 'data', ARGV[3], 'version', version, 'expires_ms', expires)
redis.call('PEXPIRE', key, s[2])
return {1, version, expires, s[3], tonumber(s[4])}
