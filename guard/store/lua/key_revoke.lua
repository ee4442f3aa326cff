-- Revoke a key of one tenant; revoking again changes nothing.
-- KEYS[1] the key's record, KEYS[2] the revision. ARGV[1] tenant, ARGV[2] now (ms).
-- Answers 'missing' (no such key in this tenant), 'again' or 'ok'.
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then
  return 'missing'
end
if redis.call('HEXISTS', KEYS[1], 'revoked_ms') == 1 then
  return 'again'
end
redis.call('HSET', KEYS[1], 'revoked_ms', ARGV[2])
redis.call('INCR', KEYS[2])
return 'ok'
