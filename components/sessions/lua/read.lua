-- read.lua — a session, sliding its expiry unless told not to (GET /v1/sessions/{sid}).
--
-- KEYS[1]  the session key  <prefix>s{<hash of the session id>}
-- ARGV[1]  now_ms
-- ARGV[2]  '1' to slide the expiry (touch), '0' not to
--
-- Reply: {1, user_id, data, created_ms, expires_ms, version}; {0} unknown or expired.
local key = KEYS[1]
local s = redis.call('HMGET', key, 'user_id', 'data', 'created_ms', 'expires_ms', 'version',
  'ttl_ms')
if not s[1] then
  return {0}
end
local expires = tonumber(s[4])
if ARGV[2] == '1' then
  expires = tonumber(ARGV[1]) + tonumber(s[6])
  redis.call('HSET', key, 'expires_ms', expires)
  redis.call('PEXPIRE', key, s[6])
end
return {1, s[1], s[2], tonumber(s[3]), expires, tonumber(s[5])}
