-- Give a store with no identity its first one, unless another process did first: the first writer wins, and
-- every process that raced it learns the winner's identity (two workers starting on a fresh store agree).
-- KEYS[1] the store's identity (hash), KEYS[2] its audit stream.
-- ARGV[1] id, ARGV[2] created (ms), ARGV[3] how, ARGV[4] previous, ARGV[5] actor, ARGV[6] reason, ARGV[7] audit kept.
-- Returns the identity as stored: {id, created_ms, how, previous}.
local stored = redis.call('HMGET', KEYS[1], 'id', 'created_ms', 'how', 'previous')
if stored[1] then
  return {stored[1], stored[2] or '0', stored[3] or '', stored[4] or ''}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_ms', ARGV[2], 'how', ARGV[3], 'previous', ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'id', ARGV[1], 'how', ARGV[3], 'previous', ARGV[4],
  'actor', ARGV[5], 'reason', ARGV[6], 'at_ms', ARGV[2])
return {ARGV[1], ARGV[2], ARGV[3], ARGV[4]}
