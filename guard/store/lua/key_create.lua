-- Store a new API key's record (its hash, never the key) and bump the control revision.
-- KEYS[1] the key's record, KEYS[2] the key index, KEYS[3] the tenants set, KEYS[4] the revision.
-- ARGV[1] key id, ARGV[2] sha256 of the key, ARGV[3] tenant, ARGV[4] roles (comma list), ARGV[5] name,
-- ARGV[6] now (ms), ARGV[7] '1' for the first start's key: made only while no key exists at all.
if ARGV[7] == '1' and redis.call('ZCARD', KEYS[2]) > 0 then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
redis.call('HSET', KEYS[1], 'key_id', ARGV[1], 'digest', ARGV[2], 'tenant', ARGV[3], 'roles', ARGV[4],
  'name', ARGV[5], 'created_ms', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('INCR', KEYS[4])
return 1
