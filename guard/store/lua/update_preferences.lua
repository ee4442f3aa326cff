-- Replace the preferences document and append its consent events, or change nothing.
-- KEYS[1] prefs doc, KEYS[2] consent ledger (stream).
-- ARGV[1] the version the caller read, ARGV[2] expected version or -1, ARGV[3] new doc JSON,
-- ARGV[4] JSON list of events, each a flat list of field/value strings.
local raw = redis.call('GET', KEYS[1])
local current = 0
if raw then current = tonumber(cjson.decode(raw).version or 0) or 0 end
local expected = tonumber(ARGV[2])
if expected >= 0 and expected ~= current then return {'stale', current} end
if tonumber(ARGV[1]) ~= current then return {'moved', current} end
redis.call('SET', KEYS[1], ARGV[3])
for _, fields in ipairs(cjson.decode(ARGV[4])) do
  redis.call('XADD', KEYS[2], '*', unpack(fields))
end
return {'ok', current + 1}
