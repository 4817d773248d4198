-- schedule_delete.lua — remove a repeatable job (DELETE /schedules/{name}).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  schedule name
--
-- Keys used: s, sn.
--
-- Reply: {1} removed; {0} there was none.
redis.call('ZREM', KEYS[1] .. 'sn', ARGV[1])
return {redis.call('HDEL', KEYS[1] .. 's', ARGV[1])}
