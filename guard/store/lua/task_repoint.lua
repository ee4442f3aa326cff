-- A held reply found its task resolved (a crash kept the user pointing at it): point the user,
-- and the reply, at a fresh task instead, unless another filer already did.
-- KEYS[1] open-task pointer, KEYS[2] reply hash. ARGV[1] the resolved task id, ARGV[2] a fresh task id.
-- Returns the task id the reply now belongs to.
local current = redis.call('GET', KEYS[1])
local task = ARGV[2]
if current and current ~= ARGV[1] then
  task = current
else
  redis.call('SET', KEYS[1], task)
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'task', task) end
return task
