-- stats.lua — counts per state, totals and latency histograms (GET /stats).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
--
-- Reply: waiting, delayed (retrying jobs included), active, completed, retrying, dead,
-- cancelled, then the number of stats fields and their pairs, then the latency histogram's
-- pairs ("w<bucket>" wait, "r<bucket>" run).
local base = KEYS[1]
local out = {
  redis.call('ZCARD', base .. 'w'),
  redis.call('ZCARD', base .. 'd'),
  redis.call('ZCARD', base .. 'a'),
  redis.call('ZCARD', base .. 'c'),
  redis.call('SCARD', base .. 'f'),
  redis.call('ZCARD', base .. 'dead'),
  redis.call('ZCARD', base .. 'x'),
}
local stats = redis.call('HGETALL', base .. 'stats')
out[#out + 1] = #stats / 2
for _, v in ipairs(stats) do
  out[#out + 1] = v
end
for _, v in ipairs(redis.call('HGETALL', base .. 'lat')) do
  out[#out + 1] = v
end
return out
