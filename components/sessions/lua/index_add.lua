-- index_add.lua — record a session in its user's index, dropping the expired ones.
--
-- KEYS[1]  the user's index  <prefix>u{<user_id>}  (sorted set: session hash → expires_ms)
-- ARGV[1]  now_ms
-- ARGV[2]  session hash
-- ARGV[3]  the session's expires_ms
--
-- The index expires with its last session, so a user who leaves leaves nothing behind.
-- Reply: the number of live sessions indexed.
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
redis.call('ZADD', key, ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.max(1, tonumber(last[2]) - tonumber(ARGV[1])))
return redis.call('ZCARD', key)
