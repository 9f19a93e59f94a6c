/**
 * The rate an account's limiter actually runs at, shared in Redis. It starts at the configured
 * limit. A 429 that got past the limiter means the configuration is wrong (a tier set too high,
 * another client spending the same account), so the rate drops — straight to the provider's
 * own limit when its 429 says what that is (x-ratelimit-limit-images), else by 30 %, at most
 * once a second so one burst of 429s counts once — and the reservoir is drained. A 429 that
 * declares a limit we are already within only drains the reservoir. Without
 * 429s it climbs back by 2 % of the configured limit every 5 s, never above a limit the
 * provider has declared. The state expires after 10 idle minutes, and the configured rate is
 * restored: a tier upgrade is picked up.
 *
 * KEYS[1] the rate hash, KEYS[2] Bottleneck's settings hash (same cluster slot).
 * ARGV: 'down' | 'up', configured images/min, the provider's declared limit or ''.
 * Returns the rate now in force, and 1 if it changed.
 */
export const ADAPT_RATE = `
if ARGV[1] == 'up' and redis.call('exists', KEYS[1]) == 0 then
  -- Forgotten (or never slowed down): make sure the reservoir runs at the configured rate.
  return {tonumber(ARGV[2]), 1}
end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local configured = tonumber(ARGV[2])
local rate = tonumber(redis.call('hget', KEYS[1], 'rate')) or configured
local changed = tonumber(redis.call('hget', KEYS[1], 'changed')) or 0
local declared = tonumber(redis.call('hget', KEYS[1], 'declared'))
local told = tonumber(ARGV[3])
if told then
  declared = told
  redis.call('hset', KEYS[1], 'declared', told)
end
local ceiling = configured
if declared and declared < ceiling then ceiling = declared end

local next_rate = rate
if ARGV[1] == 'down' then
  redis.call('hset', KEYS[2], 'reservoir', 0)
  if rate > ceiling then
    next_rate = ceiling
  elseif not told and now - changed >= 1000 then
    -- A 429 that says the limit and finds us within it was jitter, not a wrong tier: the
    -- pause and the emptied reservoir deal with it. Only a silent 429 is a reason to guess.
    next_rate = math.max(1, math.floor(rate * 0.7))
  end
elseif rate < ceiling and now - changed >= 5000 then
  next_rate = math.min(ceiling, math.ceil(rate + configured * 0.02))
end
redis.call('pexpire', KEYS[1], 600000)
if next_rate == rate then return {rate, 0} end
redis.call('hset', KEYS[1], 'rate', next_rate, 'changed', now)
return {next_rate, 1}`;
