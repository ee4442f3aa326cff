-- Delete a resolved task past its retention: the hash, its filed reply ids, its index entry and stream entry.
-- KEYS[1] task hash, KEYS[2] its filed reply ids, KEYS[3] the task index, KEYS[4] the desk's stream.
-- ARGV[1] task id. An open or claimed task is left alone (answers 0).
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'RESOLVED' then return 0 end
local stream_id = redis.call('HGET', KEYS[1], 'stream_id')
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if stream_id then redis.call('XDEL', KEYS[4], stream_id) end
return 1
