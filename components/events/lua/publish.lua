-- publish.lua — append one event to a channel of the events component's own
-- (POST /v1/events/{channel}).
--
-- KEYS[1]  the channel's stream  <prefix>e{<channel>}:s
-- ARGV[1]  the event name (SSE `event:`)
-- ARGV[2]  the data (one line of JSON)
-- ARGV[3]  MAXLEN (approximate trim)
-- ARGV[4]  retention in ms: the stream expires this long after its last event
--
-- Reply: {id} the new entry's stream id.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {id}
