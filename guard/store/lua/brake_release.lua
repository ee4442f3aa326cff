-- End a brake (an operator resumed it, or its release_after passed) and audit it.
-- KEYS[1] the brakes hash, KEYS[2] when each was resumed, KEYS[3] the audit stream, KEYS[4] the outbox.
-- ARGV[1] the field, ARGV[2] now (ms), ARGV[3] actor, ARGV[4] reason, ARGV[5] 'resume' or 'release',
-- ARGV[6] what the rules count from (JSON: the time, and the figures of its hour so far), ARGV[7] the
-- brake.released event's data (JSON).
-- Answers 1 when a brake was in force.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[6])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'at', ARGV[2], 'what', ARGV[5], 'target', ARGV[1],
  'actor', ARGV[3], 'reason', ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 10000, '*', 'type', 'brake.released', 'at', ARGV[2], 'data', ARGV[7])
return 1
