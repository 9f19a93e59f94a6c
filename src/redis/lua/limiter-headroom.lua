-- The images an account's shared Bottleneck reservoir would release now: the stored reservoir
-- plus the refills due since Bottleneck last applied them (it applies them lazily, on its next
-- script call), capped at the maximum: Bottleneck's own refill rule, on Redis' clock.
-- Read-only: a scrape never moves the limiter (limiterHeadroom).
-- KEYS: [1] Bottleneck's settings hash.
-- ARGV: none.
-- Returns: the images, or nil when the limiter has no settings (yet).

local s = redis.call('hmget', KEYS[1], 'reservoir', 'reservoirIncreaseInterval',
  'reservoirIncreaseAmount', 'reservoirIncreaseMaximum', 'lastReservoirIncrease')
local reservoir = tonumber(s[1])
if reservoir == nil then return nil end
local interval = tonumber(s[2])
local amount = tonumber(s[3])
local maximum = tonumber(s[4])
local last = tonumber(s[5])
if interval and amount and last and interval > 0 then
  local t = redis.call('time')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local intervals = math.floor((now - last) / interval)
  if intervals > 0 then
    local incr = amount * intervals
    if maximum then incr = math.min(incr, maximum - reservoir) end
    if incr > 0 then reservoir = reservoir + incr end
  end
end
return reservoir
