-- Put one reply on a task, once, keeping only the newest replies in full.
-- KEYS[1] task hash, KEYS[2] the set of reply ids ever filed on it.
-- ARGV[1] the reply as JSON, ARGV[2] its reply id, ARGV[3] how many replies the task keeps in full.
-- Returns 'missing' (no such task yet), 'resolved', 'present' (already on it) or 'appended'.
-- Repeating it is safe: a reply filed again after a crash is not listed twice, even once it has
-- been pushed out of the kept window; older replies are counted in 'replies_omitted'.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'RESOLVED' then return 'resolved' end
local replies = cjson.decode(redis.call('HGET', KEYS[1], 'replies') or '[]')
for _, known in ipairs(replies) do
  if known.reply_id == ARGV[2] then return 'present' end
end
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return 'present' end
table.insert(replies, cjson.decode(ARGV[1]))
local keep = tonumber(ARGV[3])
local omitted = 0
while #replies > keep do
  table.remove(replies, 1)
  omitted = omitted + 1
end
redis.call('HSET', KEYS[1], 'replies', cjson.encode(replies))
if omitted > 0 then redis.call('HINCRBY', KEYS[1], 'replies_omitted', omitted) end
return 'appended'
