-- Append one more reply to an open task. KEYS[1] task hash. ARGV[1] the reply as JSON.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'RESOLVED' then return 0 end
local replies = cjson.decode(redis.call('HGET', KEYS[1], 'replies') or '[]')
table.insert(replies, cjson.decode(ARGV[1]))
redis.call('HSET', KEYS[1], 'replies', cjson.encode(replies))
return 1
