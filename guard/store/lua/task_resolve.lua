-- Resolve a task (claiming it on the way if it is open). KEYS[1] task hash, KEYS[2] stream.
-- ARGV[1] agent, ARGV[2] now ms, ARGV[3] group, ARGV[4] outcome, ARGV[5] note.
-- Returns {status, assignee or user}: 'ok' (resolved now; the user), 'again' (this agent resolved it
-- before: nothing changes; the user), 'resolved' (another agent did), 'taken', 'missing'.
local r = redis.call('HMGET', KEYS[1], 'status', 'assignee', 'stream_id', 'user_id')
if not r[1] then return {'missing', ''} end
if r[1] == 'RESOLVED' then
  if r[2] == ARGV[1] then return {'again', r[4]} end
  return {'resolved', r[2] or ''}
end
if r[1] == 'CLAIMED' and r[2] ~= ARGV[1] then return {'taken', r[2]} end
redis.call('HSET', KEYS[1], 'status', 'RESOLVED', 'assignee', ARGV[1], 'resolved_at', ARGV[2],
  'outcome', ARGV[4], 'note', ARGV[5])
redis.call('XACK', KEYS[2], ARGV[3], r[3])
return {'ok', r[4]}
