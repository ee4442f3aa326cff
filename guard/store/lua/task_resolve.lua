-- Resolve a task (claiming it on the way if it is open). KEYS[1] task hash, KEYS[2] stream, KEYS[3] the outbox.
-- ARGV[1] agent (the key's name), ARGV[2] now ms, ARGV[3] group, ARGV[4] outcome, ARGV[5] note, ARGV[6] the agent's key id,
-- ARGV[7] the task.resolved event's data (JSON).
-- Returns {status, assignee or user}: 'ok' (resolved now; the user), 'again' (this agent resolved it
-- before: nothing changes; the user), 'resolved' (another agent did), 'taken', 'missing'.
-- An agent is its key (a task from before keys were recorded is compared by name).
local r = redis.call('HMGET', KEYS[1], 'status', 'assignee', 'stream_id', 'user_id', 'assignee_key')
if not r[1] then return {'missing', ''} end
local mine = (r[5] and r[5] == ARGV[6]) or (not r[5] and r[2] == ARGV[1])
if r[1] == 'RESOLVED' then
  if mine then return {'again', r[4]} end
  return {'resolved', r[2] or ''}
end
if r[1] == 'CLAIMED' and not mine then return {'taken', r[2]} end
redis.call('HSET', KEYS[1], 'status', 'RESOLVED', 'assignee', ARGV[1], 'assignee_key', ARGV[6], 'resolved_at', ARGV[2],
  'outcome', ARGV[4], 'note', ARGV[5])
redis.call('XACK', KEYS[2], ARGV[3], r[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'type', 'task.resolved', 'at', ARGV[2], 'data', ARGV[7])
return {'ok', r[4]}
