-- Create a recovery task and publish it on the desk's stream (tenant slot).
-- KEYS[1] task hash, KEYS[2] task index, KEYS[3] stream, KEYS[4] the task's filed reply ids, KEYS[5] the outbox.
-- ARGV[1] task id, ARGV[2] created ms, ARGV[3] the first reply's id, ARGV[4] the task.opened event's data (JSON),
-- ARGV[5..] field/value pairs.
-- A task that exists already is left as it is.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {}
for i = 5, #ARGV do table.insert(fields, ARGV[i]) end
local id = redis.call('XADD', KEYS[3], '*', 'task_id', ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'OPEN', 'stream_id', id, unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 10000, '*', 'type', 'task.opened', 'at', ARGV[2], 'data', ARGV[4])
return 1
