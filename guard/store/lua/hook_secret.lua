-- Set one webhook secret of a tenant; the value it replaces stays accepted until ARGV[3] (0: not at all).
-- KEYS[1] the tenant's hook secrets, KEYS[2] the control revision, KEYS[3] the tenants set.
-- ARGV[1] field (<provider>.<name>), ARGV[2] new value, ARGV[3] grace until (ms), ARGV[4] tenant.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= ARGV[2] and tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1] .. ':previous', old, ARGV[1] .. ':until', ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1] .. ':previous', ARGV[1] .. ':until')
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('INCR', KEYS[2])
return 1
