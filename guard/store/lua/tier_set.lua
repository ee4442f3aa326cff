-- Calibrate (or, with an empty tier, end the calibration of) a user's engagement tier, and audit it.
-- KEYS[1] the engagement hash, KEYS[2] the audit stream. ARGV[1] tier, ARGV[2] until (ms), ARGV[3] now (ms),
-- ARGV[4] actor, ARGV[5] reason, ARGV[6] how long the records live (ms).
local before = redis.call('HMGET', KEYS[1], 'tier', 'tier_until')
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'tier', 'tier_until')
else
  redis.call('HSET', KEYS[1], 'tier', ARGV[1], 'tier_until', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
redis.call('XADD', KEYS[2], '*', 'at', ARGV[3], 'actor', ARGV[4], 'reason', ARGV[5], 'old_tier', before[1] or '',
  'old_until', before[2] or '', 'new_tier', ARGV[1], 'new_until', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
