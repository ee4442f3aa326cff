-- After a task is resolved: the user may get a new task; optionally the hold ends now.
-- KEYS[1] open-task pointer, KEYS[2] hold. ARGV[1] task id, ARGV[2] "1" to lift the hold.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
return 1
