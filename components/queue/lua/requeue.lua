-- requeue.lua — dead letters back to waiting, with their attempts reset
-- (POST /dead/requeue).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  now_ms
-- ARGV[2]  events stream MAXLEN
-- ARGV[3]  how many of the oldest dead letters to requeue when no ids follow
-- ARGV[4..] job ids (only those that are dead are requeued)
--
-- Keys used: dead, j:<id>, w, seq, ev.
--
-- Reply: {number requeued}.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local ids = {}
for i = 4, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids == 0 then
  ids = redis.call('ZRANGE', base .. 'dead', 0, tonumber(ARGV[3]) - 1)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', base .. 'dead', id) == 1 then
    local jk = base .. 'j:' .. id
    local priority = tonumber(redis.call('HGET', jk, 'priority'))
    if priority then
      local seq = redis.call('INCR', base .. 'seq')
      redis.call('HSET', jk, 'status', 'waiting', 'attempts', 0, 'available_ms', now, 'lease', '')
      redis.call('HDEL', jk, 'finished_ms')
      redis.call('ZADD', base .. 'w', (1000 - priority) * 2199023255552 + seq, id)
      redis.call('XADD', base .. 'ev', 'MAXLEN', '~', ARGV[2], '*', 'event', 'waiting', 'id', id, 'ms', now)
      n = n + 1
    end
  end
end
if n > 0 then
  redis.call('LPUSH', base .. 'n', 1)
  redis.call('LTRIM', base .. 'n', 0, 0)
end
return {n}
