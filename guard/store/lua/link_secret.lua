-- The secrets that sign a tenant's preference links, changed in one step (bumping the control revision).
-- KEYS[1] the tenant's link secrets (hash: current -> id, s:<id> -> secret), KEYS[2] the revision,
-- KEYS[3] the tenants set.
-- ARGV[1] 'ensure' (make the first secret while there is none) or 'rotate', ARGV[2] new id, ARGV[3] new secret,
-- ARGV[4] '1' to retire every older secret, ARGV[5] how many secrets are kept at most, ARGV[6] tenant.
-- Returns the id of the secret that signs now.
local current = redis.call('HGET', KEYS[1], 'current')
if ARGV[1] == 'ensure' and current then
  return current
end
redis.call('HSET', KEYS[1], 's:' .. ARGV[2], ARGV[3], 'current', ARGV[2])
local fields = redis.call('HKEYS', KEYS[1])
local ids = {}
for _, f in ipairs(fields) do
  if string.sub(f, 1, 2) == 's:' and f ~= 's:' .. ARGV[2] then
    table.insert(ids, string.sub(f, 3))
  end
end
table.sort(ids)  -- ids begin with their creation time in hex: oldest first
local keep = ARGV[4] == '1' and 0 or (tonumber(ARGV[5]) - 1)
for i = 1, #ids - keep do
  redis.call('HDEL', KEYS[1], 's:' .. ids[i])
end
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('INCR', KEYS[2])
return ARGV[2]
