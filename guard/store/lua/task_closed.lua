-- After a task is resolved: the user may get a new task; optionally the hold ends now.
-- KEYS[1] open-task pointer, KEYS[2] hold. ARGV[1] task id, ARGV[2] "1" to lift the hold.
-- Only the task the user's pointer names holds the user: a task resolved earlier (its pointer
-- released, a newer complaint holding the user under another task) lifts nothing.
-- Returns 1 when this task still held the user, 0 otherwise.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
return 1
