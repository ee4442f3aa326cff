-- Claim a task for an agent. KEYS[1] task hash, KEYS[2] stream, KEYS[3] the outbox.
-- ARGV[1] agent (the key's name), ARGV[2] now ms, ARGV[3] group, ARGV[4] the agent's key id, ARGV[5] the
-- task.claimed event's data (JSON).
-- An agent is its key: a claim by another key is 'taken' whatever its name. A task claimed before keys were
-- recorded (no assignee_key) is compared by name.
local r = redis.call('HMGET', KEYS[1], 'status', 'assignee', 'stream_id', 'assignee_key')
if not r[1] then return {'missing', ''} end
if r[1] == 'RESOLVED' then return {'resolved', r[2] or ''} end
local mine = (r[4] and r[4] == ARGV[4]) or (not r[4] and r[2] == ARGV[1])
if r[1] == 'CLAIMED' and not mine then return {'taken', r[2]} end
redis.call('HSET', KEYS[1], 'status', 'CLAIMED', 'assignee', ARGV[1], 'assignee_key', ARGV[4], 'claimed_at', ARGV[2])
redis.call('XACK', KEYS[2], ARGV[3], r[3])
if r[1] ~= 'CLAIMED' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'type', 'task.claimed', 'at', ARGV[2], 'data', ARGV[5])
end
return {'ok', ARGV[1]}
