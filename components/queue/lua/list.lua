-- list.lua — the newest jobs of one of the queue's sets, whole (GET /dead).
--
-- KEYS[1]  the queue's key base  <prefix>q{<queue>}:
-- ARGV[1]  which zset: "dead" | "c" (completed) | "x" (cancelled) | "a" (active)
-- ARGV[2]  limit
--
-- Reply: one JSON object (the job hash) per job, newest first.
local base = KEYS[1]
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', base .. ARGV[1], 0, tonumber(ARGV[2]) - 1)) do
  local flat = redis.call('HGETALL', base .. 'j:' .. id)
  if #flat > 0 then
    local job = {}
    for k = 1, #flat, 2 do
      job[flat[k]] = flat[k + 1]
    end
    out[#out + 1] = cjson.encode(job)
  end
end
return out
