-- What one provider answer says about a route's limit, applied to the shared window
-- (RedisRateLimiter#observe). Run only when an answer carries news: the first answer a process
-- sees, a 429, a declared limit that differs from the one in force, or tokens to settle.
--   - Declared limits (x-ratelimit-limit-images/-tokens/-requests, per minute) are the
--     provider's own word: one below the configured limit is used at once, by every worker;
--     one at or above it clears what an earlier 429 taught (the configuration stands).
--   - A 429 blocks every call for the wait the provider asked for, and is judged by the log:
--     * the window was empty, or still had room for more than this call when it was granted
--       (counting the grants it refused, which a provider may count too):
--       the provider holds less than we think — what it may have accepted before this call
--       (the grants before it, less those it refused), and that becomes the limit. A window of
--       one image, alone in it, cannot hold less: it grows by the provider's wait (or the rate
--       halves). The refusals of other calls granted before that cut arrive out of order:
--       each is a lower bound of the limit, and the highest stands;
--     * granted within a window after such a cut: the provider's window may still hold the
--       burst before it, so the refusal says nothing new;
--     * the window was full, within five windows of such a cut: the cut was not deep enough
--       (a token bucket accepts its refill on top of its capacity): cut again;
--     * the window was full otherwise: timing (the request reached the provider a little
--       early in its reckoning). The margin grows by 1 % of the window, up to 10 %, and only a
--       third such burst of 429s within a minute changes the limit: one that is not a whole
--       number a second is then counted in whole seconds, rounded down (the provider's likely
--       reckoning), else the allowance loses an image.
--   - Tokens: the call's estimate is replaced by what it used.
-- What is learned lasts 10 minutes after it was last confirmed; then the configured limits
-- apply again (a tier upgrade is picked up).
-- KEYS: [1] grants, [2] weights, [3] used, [4] learned, [5] block (as in rate-acquire.lua).
-- ARGV: [1]–[4] and [8] as in rate-acquire.lua (configured limits, minute, base margin);
--   [5] the grant id ('' none), [6] tokens used ('' unknown), [7] 1 if the provider refused
--   the call with a 429, else 0, [9] declared images/min, [10] declared tokens/min,
--   [11] declared requests/min ('' when not declared), [12] how long the provider asked
--   every call to wait (ms, '' none), [13] 1 if this is the first answer a process has seen on
--   the route (the window's slow start ends, see rate-acquire.lua), else 0.
-- Returns: {images per minute in force, allowance in images, 1 if a limit was lowered else 0}.

--- @include "rate-window"

local LEARNED_TTL_MS = 600000
local now = redis_now_ms()
if ARGV[13] == '1' then redis.call('hset', KEYS[3], 'answered', 1) end
local grant = ARGV[5]
local lowered = 0
local window_before = window_for(KEYS[4], ARGV).ms

-- Tokens: the estimate becomes what was used.
if grant ~= '' and ARGV[6] ~= '' then
  local value = redis.call('hget', KEYS[2], grant)
  if value then
    local settled = read_grant(value)
    local used_tokens = tonumber(ARGV[6])
    redis.call('hincrbyfloat', KEYS[3], 'tokens', used_tokens - settled.tokens)
    settled.tokens = used_tokens
    write_grant(KEYS[2], grant, settled)
  end
end

-- Declared limits.
local dims = {{'images', 1, 9}, {'tokens', 2, 10}, {'requests', 3, 11}}
for _, d in ipairs(dims) do
  local declared = tonumber(ARGV[d[3]])
  if declared and declared > 0 then
    local configured = tonumber(ARGV[d[2]]) or 0
    if configured <= 0 or declared < configured then
      local before = tonumber(redis.call('hget', KEYS[4], d[1]))
      if before ~= declared then
        redis.call('hset', KEYS[4], d[1], declared)
        -- A limit of a dimension nobody configured (requests, usually) is news, not a cut.
        if configured > 0 and (not before or declared < before) then lowered = 1 end
      end
      redis.call('pexpire', KEYS[4], LEARNED_TTL_MS)
    else
      redis.call('hdel', KEYS[4], d[1])
    end
  end
end

if ARGV[7] == '1' then
  local wait = tonumber(ARGV[12])
  if wait and wait > 0 and redis.call('pttl', KEYS[5]) < wait then
    redis.call('set', KEYS[5], '1', 'PX', math.ceil(wait))
  end
  local w = window_for(KEYS[4], ARGV)
  local score = grant ~= '' and redis.call('zscore', KEYS[1], grant)
  local value = grant ~= '' and redis.call('hget', KEYS[2], grant)
  -- A declared limit that just lowered the window put it right; otherwise judge the 429 by
  -- the log.
  if w.images and score and value and lowered == 0 then
    local refused = read_grant(value)
    local images, granted_at = refused.images, refused.granted_at
    -- Marked refused: the grant holds its place in the window (a provider may count refused
    -- calls too) but never counts as accepted below.
    if not refused.refused then
      refused.refused = true
      write_grant(KEYS[2], grant, refused)
    end
    -- Before this call in the window: every grant (`all_before`), and those the provider may
    -- have accepted (`before`: less those it refused).
    local before, all_before = 0, 0
    local earlier = redis.call('zrangebyscore', KEYS[1], '-inf', '(' .. score)
    for _, id in ipairs(earlier) do
      local other = redis.call('hget', KEYS[2], id)
      if other then
        local earlier_grant = read_grant(other)
        all_before = all_before + earlier_grant.images
        if not earlier_grant.refused then before = before + earlier_grant.images end
      end
    end
    local learned = redis.call('hmget', KEYS[4], 'cut_horizon', 'cut_from', 'cut_at')
    local horizon, cut_from = tonumber(learned[1]) or 0, tonumber(learned[2])
    local cut_at = tonumber(learned[3]) or 0
    -- Records a cut: the grants made so far belong to its burst, whose refusals may raise the
    -- new allowance back up to `ceiling`.
    local function cut(ceiling)
      local last = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES')
      redis.call('hset', KEYS[4], 'cut_horizon', last[2] or score, 'cut_from', ceiling, 'cut_at', now)
    end
    local allowance = w.images
    -- It accepted `before` and refused `before + images`: it holds at least `before`.
    local estimate = math.max(1, before)
    if cut_from and tonumber(score) <= horizon then
      -- Granted before the last cut: the refusals of that burst arrive out of order, so each
      -- one's estimate is a lower bound of what the provider holds, and the highest stands.
      allowance = math.min(cut_from, math.max(allowance, estimate))
    elseif granted_at < cut_at + w.q then
      -- Granted within a window of the last cut: the provider's window may still hold that
      -- burst, so its refusal says nothing about the new allowance.
      allowance = w.images
    elseif all_before == 0 or all_before + images <= allowance - images then
      -- Room by our count: the provider holds less than we think.
      allowance = math.min(allowance, estimate)
      cut(w.images)
      if all_before == 0 and w.images == 1 then
        -- Nothing to take off (a window of one image, alone in it): the provider's window is
        -- longer than ours — the gap since the grant before plus the wait it asked for, or,
        -- without those, half the rate.
        local longer = tonumber(ARGV[12])
        local previous_at = refused.previous_at
        local gap = granted_at - previous_at
        local per_minute = w.per_minute.images / 2
        if longer and longer > 0 and previous_at > 0 and gap > 0 then
          per_minute = math.min(per_minute * 2, tonumber(ARGV[4]) / (gap + longer))
        elseif longer and longer > 0 then
          per_minute = w.per_minute.images * w.q / (w.q + longer)
        end
        redis.call('hset', KEYS[4], 'images', per_minute)
        lowered = 1
      end
    elseif now - cut_at < 5 * w.q then
      -- At the edge, but within a few windows of a cut: not timing, the cut was not deep
      -- enough (a token bucket accepts its refill on top of its capacity in any one window).
      allowance = math.min(allowance, estimate)
      cut(allowance)
    else
      local strikes = tonumber(redis.call('hget', KEYS[4], 'strikes')) or 0
      local last = tonumber(redis.call('hget', KEYS[4], 'strike_at')) or 0
      if now - last > 60000 then strikes = 0 end
      -- The 429s of one burst (within half a window) are one strike.
      if now - last >= w.q / 2 then strikes = strikes + 1 end
      redis.call('hset', KEYS[4], 'strikes', strikes, 'strike_at', now,
        'margin', math.min(0.1, w.margin + 0.01))
      if strikes >= 3 then
        local per_second = w.per_minute.images / 60
        if not w.whole_seconds and per_second > 1 and per_second ~= math.floor(per_second) then
          -- Our window holds a second's fraction more than a provider counting whole seconds
          -- and rounding down allows: count as it does.
          redis.call('hset', KEYS[4], 'whole_seconds', 1)
          lowered = 1
        else
          allowance = math.max(1, allowance - 1)
        end
        redis.call('hset', KEYS[4], 'strikes', 0)
      end
    end
    if allowance ~= w.images then
      redis.call('hset', KEYS[4], 'images', allowance * tonumber(ARGV[4]) / w.q)
      if allowance < w.images then lowered = 1 end
    end
    redis.call('pexpire', KEYS[4], LEARNED_TTL_MS)
  end
end

local w = window_for(KEYS[4], ARGV)
-- A longer window now: the grants already in it stay for the new length too, or the next call
-- would follow the last one sooner than the provider's window allows.
if w.ms > window_before then
  local longer = w.ms - window_before
  local grants = redis.call('zrange', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #grants, 2 do
    redis.call('zadd', KEYS[1], tonumber(grants[i + 1]) + longer, grants[i])
  end
end
return {math.floor(w.per_minute.images or 0), w.images or 0, lowered}
