-- The images one provider route's rate window would let through now (RedisRateLimiter#headroom):
-- the allowance in force less the grants still in the window. Read-only: a metrics scrape
-- never moves the window.
-- KEYS: [1] grants, [2] weights, [3] used, [4] learned, [5] block (as in rate-acquire.lua).
-- ARGV: [1]–[4] and [8] as in rate-acquire.lua ([5]–[7] unused).
-- Returns: the images, or -1 when the route has no images limit.

--- @include "rate-window"

local now = redis_now_ms()
local w = window_for(KEYS[4], ARGV)
if not w.images then return -1 end
if redis.call('pttl', KEYS[5]) > 0 then return 0 end
local held = 0
local live = redis.call('zrangebyscore', KEYS[1], '(' .. now, '+inf')
for _, id in ipairs(live) do
  local value = redis.call('hget', KEYS[2], id)
  if value then held = held + read_grant(value).images end
end
return math.max(0, w.images - held)
