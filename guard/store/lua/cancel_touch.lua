-- Give back a recorded touch. KEYS[1] touch record, KEYS[2] touch index. ARGV[1] touch id.
-- The cap keys to give back are the ones the record names; all share the user's hash tag.
if redis.call('HGET', KEYS[1], 'state') ~= 'recorded' then return 0 end
local keys = cjson.decode(redis.call('HGET', KEYS[1], 'keys') or '[]')
for _, k in ipairs(keys) do redis.call('ZREM', k, ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled')
return 1
