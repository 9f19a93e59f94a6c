-- Writes the reservoir shape for a rate into Bottleneck's settings (RedisRateLimiter), which
-- every process reads on each tick — only while those settings exist (writing into a hash
-- Bottleneck has lost would create a partial one that its scripts cannot work with; it
-- re-creates the whole hash itself) and only if the rate is still the one in force (another
-- process may have moved it since; see adapt-rate.lua).
-- KEYS: [1] the limiter's rate hash, [2] Bottleneck's settings hash.
-- ARGV: [1] rate, [2] configured images/min, [3] refill amount, [4] refill interval (ms),
--   [5] reservoir maximum.
-- Returns: 1 written, 0 not.

if redis.call('exists', KEYS[2]) == 0 then return 0 end
local current = tonumber(redis.call('hget', KEYS[1], 'rate')) or tonumber(ARGV[2])
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('hset', KEYS[2], 'reservoirIncreaseAmount', ARGV[3],
  'reservoirIncreaseInterval', ARGV[4], 'reservoirIncreaseMaximum', ARGV[5])
return 1
