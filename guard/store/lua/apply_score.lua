-- Apply a model score to a stored reply, once: hold the user and point at ONE open recovery task.
-- KEYS[1] reply hash, KEYS[2] unscored replies, KEYS[3] hold, KEYS[4] open-task pointer.
-- ARGV[1] reply id, ARGV[2] label, ARGV[3] negative score, ARGV[4] threshold, ARGV[5] hold ms,
-- ARGV[6] a fresh task id (used only if no task is open), ARGV[7] now ms.
-- Returns {fresh (1 when this call applied the score), label, score, action, task id, task is new}.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0, '', '0', 'none', '', 0} end
if state == 'scored' then
  local r = redis.call('HMGET', KEYS[1], 'label', 'negative', 'action', 'task')
  return {0, r[1] or '', r[2] or '0', r[3] or 'none', r[4] or '', 0}
end
local neg = tonumber(ARGV[3])
local action = redis.call('HGET', KEYS[1], 'keyword') or ''
local task, is_new = '', 0
if action == '' then
  action = 'none'
  if neg >= tonumber(ARGV[4]) then
    action = 'hold'
    local now = tonumber(ARGV[7])
    local until_ms = now + tonumber(ARGV[5])
    local current = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
    if current < until_ms then
      redis.call('SET', KEYS[3], until_ms, 'PX', until_ms - now)
    end
    task = redis.call('GET', KEYS[4]) or ''
    if task == '' then
      task, is_new = ARGV[6], 1
      redis.call('SET', KEYS[4], task)
    end
  end
end
redis.call('HSET', KEYS[1], 'state', 'scored', 'label', ARGV[2], 'negative', ARGV[3], 'action', action, 'task', task)
redis.call('ZREM', KEYS[2], ARGV[1])
return {1, ARGV[2], ARGV[3], action, task, is_new}
