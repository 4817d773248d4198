-- index_take.lua — take every session hash of a user and delete the index, atomically
-- (DELETE /v1/users/{uid}/sessions); a session created meanwhile re-creates the index.
--
-- KEYS[1]  the user's index  <prefix>u{<user_id>}
--
-- Reply: the session hashes.
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return members
