-- Note when keys were last used (written in batches, off the call path); a key gone stays gone.
-- KEYS: the records of the keys used. ARGV[1] now (ms).
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'last_used_ms', ARGV[1])
  end
end
return #KEYS
