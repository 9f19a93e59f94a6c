-- Sets an account's pause unless a longer one is already in force; Redis keeps the clock (PX)
-- (RedisAccountGate#pause).
-- KEYS: [1] the account's pause key.
-- ARGV: [1] duration (ms), [2] the pause's JSON ({code, reason}).
-- Returns: 1 set, 0 a longer pause was in force.

local ttl = redis.call('pttl', KEYS[1])
if ttl < tonumber(ARGV[1]) then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return 1
end
return 0
