-- Brake a campaign or strategy once (a brake in force is left as it is) and audit it.
-- KEYS[1] the brakes hash, KEYS[2] the audit stream, KEYS[3] the outbox. ARGV[1] the field (c:<id> or s:<id>),
-- ARGV[2] the brake (JSON), ARGV[3] now (ms), ARGV[4] the rule, ARGV[5] the brake.tripped event's data (JSON).
-- Answers 1 when this call braked it.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'at', ARGV[3], 'what', 'trip', 'target', ARGV[1],
  'rule', ARGV[4], 'actor', 'guard', 'reason', ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'type', 'brake.tripped', 'at', ARGV[3], 'data', ARGV[5])
return 1
