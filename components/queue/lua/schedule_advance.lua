-- schedule_advance.lua — move a schedule from the tick just fired to its next tick, once.
--
-- The job of a tick is enqueued first with the idempotency key "schedule:<name>:<tick>", so
-- however many hosts fire the same tick, one job exists; this compare-and-set then moves the
-- schedule on exactly once.
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  schedule name
-- ARGV[2]  the tick that was fired (ms)
-- ARGV[3]  the next tick (ms)
--
-- Keys used: sn (zset: schedule name -> next tick).
--
-- Reply: {1} advanced; {0} someone else already did (or the schedule was removed).
local current = redis.call('ZSCORE', KEYS[1] .. 'sn', ARGV[1])
if current and tonumber(current) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1] .. 'sn', ARGV[3], ARGV[1])
  return {1}
end
return {0}
