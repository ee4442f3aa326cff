-- Put one reply on a task, once. KEYS[1] task hash. ARGV[1] the reply as JSON (with its reply_id).
-- Returns 'missing' (no such task yet), 'resolved', 'present' (already on it) or 'appended'.
-- Repeating it is safe: a reply filed again after a crash is not listed twice.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'RESOLVED' then return 'resolved' end
local reply = cjson.decode(ARGV[1])
local replies = cjson.decode(redis.call('HGET', KEYS[1], 'replies') or '[]')
for _, known in ipairs(replies) do
  if known.reply_id == reply.reply_id then return 'present' end
end
table.insert(replies, reply)
redis.call('HSET', KEYS[1], 'replies', cjson.encode(replies))
return 'appended'
