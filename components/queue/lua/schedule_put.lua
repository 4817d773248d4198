-- schedule_put.lua — create or replace a repeatable job (PUT /schedules/{name}).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  schedule name
-- ARGV[2]  the schedule as JSON text ({"cron"|"every_ms", "job"})
-- ARGV[3]  its first tick (ms)
--
-- Keys used: s (hash: name -> schedule JSON), sn (zset: name -> next tick).
--
-- Reply: {1} created; {0} replaced.
local created = redis.call('HSET', KEYS[1] .. 's', ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1] .. 'sn', ARGV[3], ARGV[1])
return {created}
