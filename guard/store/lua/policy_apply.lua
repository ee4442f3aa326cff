-- Store a tenant's policy as its next version and bump the control revision.
-- KEYS[1] the tenant's policy record, KEYS[2] the versions hash, KEYS[3] the tenants set, KEYS[4] the revision.
-- ARGV[1] tenant, ARGV[2] the policy (YAML, validated by the caller), ARGV[3] actor, ARGV[4] now (ms).
local version = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], 'yaml', ARGV[2], 'version', version, 'applied_ms', ARGV[4], 'actor', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('INCR', KEYS[4])
return version
