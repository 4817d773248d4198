-- check.lua — one atomic check of a key against N policies (POST /check, typed check/peek).
--
-- Two phases: every policy is EVALUATED first (reads only); only if all of them admit the
-- cost and the mode is "commit" are they COMMITTED (writes). A denied check therefore writes
-- nothing at all: it consumes from none of the policies. Peek is the same script in mode
-- "peek": it evaluates and never commits.
--
-- KEYS (two per policy, in policy order; all share the hash tag {<key>}):
--   KEYS[2i-1]  state key A of policy i   <prefix>rl{<key>}:<policy>:<alg>:<window_ms>:a
--   KEYS[2i]    state key B of policy i   <prefix>rl{<key>}:<policy>:<alg>:<window_ms>:b
--               (B is used by sliding-window only: the log's running sum; others ignore it)
-- ARGV[1]  now_ms: the caller's time in ms since the epoch, or "" to use Redis TIME
-- ARGV[2]  mode: "commit" or "peek"
-- ARGV[3]  N, the number of policies
-- ARGV[4 + 5(i-1) ..]  per policy i: algorithm (sw | swc | tb | fw), limit, window_ms,
--          burst (capacity), cost (units this check takes from it, 1 <= cost <= capacity)
--
-- State per algorithm (every key gets a TTL on every write):
--   fw   A = hash {w = window index, c = units used in window w}; TTL = end of window w
--   swc  A = hash {w = window index, c = units in w, p = units in w-1}; TTL = end of w+1
--   tb   A = hash {t = time of last update, d = debt}; GCRA with the theoretical arrival
--        time TAT = t + d/limit ms: d is kept in units of 1/limit ms so it stays an exact
--        integer (one unit of cost = window_ms debt units; capacity = burst*window_ms).
--        TTL = until the debt is paid
--   sw   A = zset log, member "<ts>:<seq>:<cost>" scored by ts; B = hash {s = sum of costs
--        in A, n = seq}; TTL = window (from the newest entry)
--
-- Reply (flat integers; Lua numbers become integer replies, exact below 2^53): allowed (1|0), retry_after_ms, now_ms, then per policy i:
--   admitted (1|0), remaining, reset_ms
-- remaining/reset_ms are after consumption when the check was allowed and committed, else the
-- state before it. retry_after_ms is the wait until every policy admits the same cost.

local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local commit = ARGV[2] == 'commit'
local n = tonumber(ARGV[3])

-- Integral numbers as decimal text (redis.call would format large ones with exponents).
local function int(x)
  return string.format('%d', x)
end

local function pexpire(key, ms)
  redis.call('PEXPIRE', key, int(math.max(1, math.ceil(ms))))
end

-- Each evaluator takes the policy's own cost (captured by its commit closure) and returns {ok, rem, reset, rem_after, reset_after, retry, commit = function}.

local function fixed_window(a, limit, win, cost)
  local w = math.floor(now / win)
  local h = redis.call('HMGET', a, 'w', 'c')
  local c = 0
  if h[1] and tonumber(h[1]) == w then c = tonumber(h[2]) or 0 end
  local ends = (w + 1) * win - now
  local st = { rem = math.max(0, limit - c), reset = (c > 0) and ends or 0 }
  st.ok = c + cost <= limit
  st.rem_after = limit - c - cost
  st.reset_after = ends
  st.retry = st.ok and 0 or ends
  st.commit = function()
    redis.call('HSET', a, 'w', int(w), 'c', int(c + cost))
    pexpire(a, ends)
  end
  return st
end

local function sliding_counter(a, limit, win, cost)
  local w = math.floor(now / win)
  local h = redis.call('HMGET', a, 'w', 'c', 'p')
  local cur, prev = 0, 0
  local sw = tonumber(h[1])
  if sw == w then
    cur = tonumber(h[2]) or 0
    prev = tonumber(h[3]) or 0
  elseif sw == w - 1 then
    prev = tonumber(h[2]) or 0
  end
  local e = now - w * win            -- elapsed in the current window, 0 <= e < win
  -- est * win = prev * (win - e) + cur * win: exact integers (limit * window_ms <= 2^52).
  local used = prev * (win - e) + cur * win
  local cap = limit * win
  local st = {}
  st.rem = math.max(0, math.floor((cap - used) / win))
  st.ok = used + cost * win <= cap
  st.rem_after = math.floor((cap - used - cost * win) / win)
  local function reset_of(c, p)
    if c > 0 then return (w + 2) * win - now end
    if p > 0 then return (w + 1) * win - now end
    return 0
  end
  st.reset = reset_of(cur, prev)
  st.reset_after = reset_of(cur + cost, prev)
  if st.ok then
    st.retry = 0
  elseif cur + cost <= limit then
    -- Within this window, once the previous window's weight has decayed enough:
    -- prev * (win - e') <= (limit - cost - cur) * win.
    local e2 = win - math.floor(((limit - cost - cur) * win) / prev)
    st.retry = math.max(1, w * win + e2 - now)
  else
    -- In the next window, where this window's count becomes the previous one:
    -- cur * (win - e') <= (limit - cost) * win.
    local e2 = win - math.floor(((limit - cost) * win) / cur)
    st.retry = math.max(1, (w + 1) * win + e2 - now)
  end
  st.commit = function()
    redis.call('HSET', a, 'w', int(w), 'c', int(cur + cost), 'p', int(prev))
    pexpire(a, (w + 2) * win - now)
  end
  return st
end

local function token_bucket(a, limit, win, burst, cost)
  local h = redis.call('HMGET', a, 't', 'd')
  local d = tonumber(h[2]) or 0
  local t = tonumber(h[1]) or now
  if d > 0 and now > t then
    d = math.max(0, d - (now - t) * limit)
  end
  local cap = burst * win
  local need = d + cost * win
  local st = {}
  st.ok = need <= cap
  st.rem = math.max(0, math.floor((cap - d) / win))
  st.reset = math.ceil(d / limit)
  st.rem_after = math.floor((cap - need) / win)
  st.reset_after = math.ceil(need / limit)
  st.retry = st.ok and 0 or math.max(1, math.ceil((need - cap) / limit))
  st.commit = function()
    redis.call('HSET', a, 't', int(now), 'd', int(need))
    pexpire(a, math.ceil(need / limit) + 1)
  end
  return st
end

local function member_cost(m)
  return tonumber(string.match(m, ':(%d+)$')) or 0
end

local function sliding_log(a, b, limit, win, cost)
  local cutoff = now - win
  local sum = tonumber(redis.call('HGET', b, 's')) or 0
  local expired = redis.call('ZRANGEBYSCORE', a, '-inf', int(cutoff))
  for _, m in ipairs(expired) do sum = sum - member_cost(m) end
  if sum < 0 then sum = 0 end
  local st = {}
  st.ok = sum + cost <= limit
  st.rem = math.max(0, limit - sum)
  st.rem_after = limit - sum - cost
  st.reset_after = win
  st.reset = 0
  if sum > 0 then
    local newest = redis.call('ZREVRANGE', a, 0, 0, 'WITHSCORES')
    if newest[2] then st.reset = math.max(0, tonumber(newest[2]) + win - now) end
  end
  st.retry = 0
  if not st.ok then
    -- Oldest first: wait until enough of the live entries have left the window.
    local live = redis.call('ZRANGEBYSCORE', a, '(' .. int(cutoff), '+inf', 'WITHSCORES')
    local left = sum
    local i = 1
    while i <= #live do
      left = left - member_cost(live[i])
      if left + cost <= limit then
        st.retry = math.max(1, tonumber(live[i + 1]) + win - now)
        break
      end
      i = i + 2
    end
    if st.retry == 0 then st.retry = win end
  end
  st.commit = function()
    if #expired > 0 then redis.call('ZREMRANGEBYSCORE', a, '-inf', int(cutoff)) end
    local seq = redis.call('HINCRBY', b, 'n', 1)
    redis.call('ZADD', a, int(now), int(now) .. ':' .. int(seq) .. ':' .. int(cost))
    redis.call('HSET', b, 's', int(sum + cost))
    pexpire(a, win)
    pexpire(b, win)
  end
  return st
end

local states = {}
local allowed = true
local retry = 0
for i = 1, n do
  local base = 4 + 5 * (i - 1)
  local alg = ARGV[base]
  local limit = tonumber(ARGV[base + 1])
  local win = tonumber(ARGV[base + 2])
  local burst = tonumber(ARGV[base + 3])
  local cost = tonumber(ARGV[base + 4])
  local a, b = KEYS[2 * i - 1], KEYS[2 * i]
  local st
  if alg == 'fw' then
    st = fixed_window(a, limit, win, cost)
  elseif alg == 'swc' then
    st = sliding_counter(a, limit, win, cost)
  elseif alg == 'tb' then
    st = token_bucket(a, limit, win, burst, cost)
  elseif alg == 'sw' then
    st = sliding_log(a, b, limit, win, cost)
  else
    return redis.error_reply('ERR unknown algorithm ' .. tostring(alg))
  end
  if not st.ok then
    allowed = false
    if st.retry > retry then retry = st.retry end
  end
  states[i] = st
end

local committed = commit and allowed
if committed then
  for i = 1, n do states[i].commit() end
end

local reply = { allowed and 1 or 0, retry, now }
for i = 1, n do
  local st = states[i]
  reply[#reply + 1] = st.ok and 1 or 0
  if committed then
    reply[#reply + 1] = math.max(0, st.rem_after)
    reply[#reply + 1] = math.max(0, st.reset_after)
  else
    reply[#reply + 1] = st.rem
    reply[#reply + 1] = math.max(0, st.reset)
  end
end
return reply
