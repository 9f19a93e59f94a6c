-- Takes a call's turn in one provider route's rate window (RedisRateLimiter#acquire): the
-- limit every worker shares, exact in any window. The window is a log of grants — each with
-- its weight in images, tokens and requests, kept until its own expiry — so "no more than the
-- allowance in any window" holds however the provider counts (fixed wall-clock windows, a
-- sliding window, a token bucket), which a refilling reservoir cannot promise.
--
-- The window q is the shortest that holds a whole number of images and lasts at least one
-- second: allowance A = ceil(I × 1000 / M), q = A × M / I (I images per minute, M the minute's
-- length). Grants are kept for q × (1 + margin): the margin absorbs the difference between the
-- moment a turn is granted here and the moment the request reaches the provider.
-- Until the provider has answered once, the window lets half its allowance out (slow start).
-- A call heavier than the allowance (a lower limit learned mid-item, or a token-heavy image)
-- passes only into an empty window and holds it for as many windows as it weighs.
--
-- KEYS: [1] grants (sorted set: grant id → expiry ms), [2] weights (hash: grant id →
--   "images tokens granted_at previous_granted_at", " r" appended once refused), [3] used
--   (hash: images, tokens, requests in the window; the pace; the last grant's time — ahead of
--   now for a turn granted for a moment ahead, and so not always rising: rate-observe.lua
--   reads a gap only when it is positive),
--   [4] learned (hash: lower limits the provider told or showed us, see rate-observe.lua),
--   [5] block
--   (string with a TTL: every call waits while it exists), [6] the account's pause (string
--   with a TTL, account-gate.ts: out of quota, key refused): a paused account gets no turn.
-- ARGV: [1] configured images/min (0 = none), [2] tokens/min (0 = none), [3] requests/min
--   (0 = none), [4] the minute's length (ms), [5] the call's images, [6] its estimated tokens,
--   [7] a new grant id, [8] base margin (fraction of the window), [9] extra time (ms) the
--   grant stays in the window: the first calls of a process reach the provider later than
--   later calls do (connections, code warming up), so they are held a little longer.
-- Returns: {0, allowance in images, window ms, ms until the turn} granted — now (0 ms), or for
--   a moment soon after (the caller waits that long, then calls);
--   {1, wait ms, allowance in images} not yet: ask again after the wait;
--   {2, wait ms, 0} every call waits: a 429 asked so (rate-observe.lua);
--   {3, pause ms left, the pause's value} the account is paused.

--- @include "rate-window"

-- The furthest ahead a turn is granted for (see the end of this script).
local FUTURE_GRANT_HORIZON_MS = 250

-- Read here, in the turn's own round trip, rather than by a command of its own before each call.
local paused = redis.call('pttl', KEYS[6])
if paused > 0 then
  return {3, paused, redis.call('get', KEYS[6]) or ''}
end

local now = redis_now_ms()
local block = redis.call('pttl', KEYS[5])
if block > 0 then
  return {2, block, 0}
end

expire_grants(KEYS[1], KEYS[2], KEYS[3], now)
local w = window_for(KEYS[4], ARGV)
local images, tokens = tonumber(ARGV[5]), tonumber(ARGV[6])
local used = redis.call('hmget', KEYS[3], 'images', 'tokens', 'requests', 'answered', 'tat', 'last_at')
local used_images, used_tokens, used_requests =
  tonumber(used[1]) or 0, tonumber(used[2]) or 0, tonumber(used[3]) or 0
-- Slow start: until the provider has answered a call on this route (since the window was last
-- idle), only half the allowance goes out. The first answer may declare a lower limit; if the
-- configured one is right, the other half follows a moment later.
local full_images, full_tokens = w.images, w.tokens
if used[4] ~= '1' then
  if w.images then w.images = math.max(1, math.ceil(w.images / 2)) end
  if w.tokens then w.tokens = w.tokens / 2 end
end

-- How many windows the call holds: more than one only when it is heavier than the (whole)
-- allowance. One heavier than the slow start's half goes alone, for one window.
local stretch = 1
local function weigh(weight, allowance)
  if allowance and allowance > 0 and weight > allowance then
    stretch = math.max(stretch, weight / allowance)
  end
end
weigh(images, full_images)
weigh(tokens, full_tokens)

local function fits(freed_images, freed_tokens, freed_requests)
  local ui, ut, ur = used_images - freed_images, used_tokens - freed_tokens, used_requests - freed_requests
  if w.images and images > 0 then
    if images > w.images then if ui > 0 then return false end
    elseif ui + images > w.images then return false end
  end
  if w.tokens and tokens > 0 then
    if tokens > w.tokens then if ut > 0 then return false end
    elseif ut + tokens > w.tokens then return false end
  end
  if w.requests and ur + 1 > w.requests then return false end
  return true
end

-- Pacing: within the window, images go out evenly — a burst of at most half the allowance,
-- then one image's share of the window apart — so that a provider counting with a token bucket
-- (whose refill the window does not see) meets a steady stream rather than a wall, and a wrong
-- limit shows in a few 429s rather than half a window of them. `tat` is when the pace would
-- let the next image out (GCRA's theoretical arrival time).
local pace_wait = 0
local spacing
if full_images and images > 0 then
  spacing = w.q / full_images
  local tat = tonumber(used[5]) or now
  local tolerance = w.q / 2
  if tat - now > tolerance then pace_wait = math.ceil(tat - now - tolerance) end
end

-- Records the call's grant as let out at `at` (now, or a moment ahead: see below).
local function grant(at)
  if spacing then
    local tat = math.max(tonumber(used[5]) or at, at) + images * spacing
    redis.call('hset', KEYS[3], 'tat', tat)
  end
  -- A cold path's extra hold, at most 10 % of the window (a shortened test minute).
  local cold = math.min(tonumber(ARGV[9]) or 0, w.ms * 0.1)
  local expiry = at + math.ceil(w.ms * stretch + cold)
  -- The log is read in grant order by expiry (rate-observe.lua counts the grants before a
  -- refused one by score): a grant made in the same millisecond as the last, or that would
  -- leave before a longer-held one (a cold path's), leaves a millisecond after it instead.
  local last = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= expiry then expiry = tonumber(last[2]) + 1 end
  redis.call('zadd', KEYS[1], expiry, ARGV[7])
  -- Weight, then when it was granted and when the grant before it was (rate-observe.lua reads
  -- the gap when a window of one image is refused).
  write_grant(KEYS[2], ARGV[7], {
    images = images, tokens = tokens, granted_at = at, previous_at = tonumber(used[6]) or 0,
  })
  redis.call('hset', KEYS[3], 'last_at', at)
  redis.call('hincrby', KEYS[3], 'images', images)
  redis.call('hincrbyfloat', KEYS[3], 'tokens', tokens)
  redis.call('hincrby', KEYS[3], 'requests', 1)
  -- The log outlives its last grant a little, then nothing is left behind.
  local ttl = expiry - now + 60000
  for i = 1, 3 do
    if redis.call('pttl', KEYS[i]) < ttl then redis.call('pexpire', KEYS[i], ttl) end
  end
  return {0, full_images or 0, math.ceil(w.ms), at - now}
end

if pace_wait == 0 and fits(0, 0, 0) then return grant(now) end

-- Not yet: the wait is until the pace allows and enough of the oldest grants have expired —
-- counting the grants already made for a moment ahead, so each caller waits for a turn of its
-- own. Nil: a lowered limit left a full log that never fits.
local function wait_for_turn()
  if fits(0, 0, 0) then return pace_wait end
  local freed_images, freed_tokens, freed_requests = 0, 0, 0
  local grants = redis.call('zrange', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #grants, 2 do
    local value = redis.call('hget', KEYS[2], grants[i])
    if value then
      local older = read_grant(value)
      freed_images = freed_images + older.images
      freed_tokens = freed_tokens + older.tokens
    end
    freed_requests = freed_requests + 1
    if fits(freed_images, freed_tokens, freed_requests) then
      return math.max(1, pace_wait, tonumber(grants[i + 1]) - now)
    end
  end
  return nil
end

-- A turn due within a quarter of the window (and 250 ms) is granted now, for the moment it
-- falls due: the caller sleeps until then and calls without asking again. Several workers
-- waiting on one window would otherwise all ask again when the oldest grant expires, and all
-- but one be told to wait once more. The grant counts in the window from now (earlier than its
-- call: never more than the allowance), and the horizon bounds how long a caller holding one
-- can miss a block a 429 sets, or an account pause, meanwhile: at most one call per limiter
-- (route and model) of each process, as for a call granted just before the block.
local wait = wait_for_turn()
-- Whole milliseconds: a reply's number is cut to an integer, and the caller must not call early.
if wait then wait = math.ceil(wait) end
if wait and wait <= math.min(w.q / 4, FUTURE_GRANT_HORIZON_MS) then return grant(now + wait) end
-- Only a lowered limit can leave a full log that never fits; look again a window later.
return {1, wait or math.ceil(w.ms), full_images or 0}
