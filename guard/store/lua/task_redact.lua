-- Remove a user's words from a task of theirs (erasure): the replies, the note, the user id; the task's
-- shape (priority, times, outcome) stays for the desk's figures.
-- KEYS[1] task hash. ARGV[1] the user id, ARGV[2] now (ms).
if redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[1] then return 0 end
local listed = cjson.decode(redis.call('HGET', KEYS[1], 'replies') or '[]')
local omitted = tonumber(redis.call('HGET', KEYS[1], 'replies_omitted') or '0') or 0
redis.call('HSET', KEYS[1], 'replies', '[]', 'replies_omitted', omitted + #listed, 'user_id', '', 'note', '',
  'erased_ms', ARGV[2])
return 1
