-- Claim a task for an agent. KEYS[1] task hash, KEYS[2] stream. ARGV[1] agent, ARGV[2] now ms, ARGV[3] group.
local r = redis.call('HMGET', KEYS[1], 'status', 'assignee', 'stream_id')
if not r[1] then return {'missing', ''} end
if r[1] == 'RESOLVED' then return {'resolved', r[2] or ''} end
if r[1] == 'CLAIMED' and r[2] ~= ARGV[1] then return {'taken', r[2]} end
redis.call('HSET', KEYS[1], 'status', 'CLAIMED', 'assignee', ARGV[1], 'claimed_at', ARGV[2])
redis.call('XACK', KEYS[2], ARGV[3], r[3])
return {'ok', ARGV[1]}
