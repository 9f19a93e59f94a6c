-- The rate an account's limiter actually runs at, shared in Redis (RedisRateLimiter). It starts
-- at the configured limit. A 429 that got past the limiter means the configuration is wrong (a
-- tier set too high, another client spending the same account), so the rate drops — straight
-- to the provider's own limit when its 429 says what that is (x-ratelimit-limit-images), else
-- by 30 %, at most once a second so one burst of 429s counts once — and the reservoir is
-- drained. A 429 that declares a limit we are already within only drains the reservoir.
-- Without 429s the rate climbs back by 2 % of the configured limit every 5 s, never above a
-- limit the provider has declared. The state expires 10 minutes after the last 429, and the
-- configured rate applies again: a tier upgrade is picked up.
-- KEYS: [1] the limiter's rate hash, [2] Bottleneck's settings hash (same cluster slot).
-- ARGV: [1] 'down' | 'up', [2] configured images/min, [3] the provider's declared limit or ''.
-- Returns: {rate now in force, 1 if the reservoir should be re-shaped for it else 0}.

local configured = tonumber(ARGV[2])
if redis.call('exists', KEYS[1]) == 0 and ARGV[1] == 'up' then
  -- Nothing slowed down (or it was forgotten): the reservoir runs at the configured rate.
  return {configured, 1}
end

local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(redis.call('hget', KEYS[1], 'rate')) or configured
local changed = tonumber(redis.call('hget', KEYS[1], 'changed')) or 0
local declared = tonumber(redis.call('hget', KEYS[1], 'declared'))
local told = tonumber(ARGV[3])
if told then declared = told end
local ceiling = configured
if declared and declared < ceiling then ceiling = declared end

local next_rate = rate
if ARGV[1] == 'down' then
  if redis.call('exists', KEYS[2]) == 1 then redis.call('hset', KEYS[2], 'reservoir', 0) end
  if rate > ceiling then
    next_rate = ceiling
  elseif not told and now - changed >= 1000 then
    next_rate = math.max(1, math.floor(rate * 0.7))
  end
  redis.call('hset', KEYS[1], 'rate', rate, 'changed', changed)
  if declared then redis.call('hset', KEYS[1], 'declared', declared) end
  redis.call('pexpire', KEYS[1], 600000)
elseif rate < ceiling and now - changed >= 5000 then
  next_rate = math.min(ceiling, math.ceil(rate + configured * 0.02))
end
if next_rate == rate then return {rate, 0} end
redis.call('hset', KEYS[1], 'rate', next_rate, 'changed', now)
return {next_rate, 1}
