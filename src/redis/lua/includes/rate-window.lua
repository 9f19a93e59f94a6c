-- The rate window of one provider route, shared by rate-acquire.lua and rate-observe.lua.

-- Redis' own clock, in ms: every worker's grants are timed by one clock.
local function redis_now_ms()
  local t = redis.call('time')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- One grant in the weights hash: "images tokens granted_at previous_granted_at", and " r"
-- once the provider refused its call.
local function read_grant(value)
  local images, tokens, granted_at, previous_at = string.match(value, '^(%S+) (%S+) (%S+) (%S+)')
  return {
    images = tonumber(images),
    tokens = tonumber(tokens),
    granted_at = tonumber(granted_at),
    previous_at = tonumber(previous_at),
    refused = string.find(value, ' r$') ~= nil,
  }
end

local function write_grant(weights_key, id, grant)
  redis.call('hset', weights_key, id, grant.images .. ' ' .. grant.tokens .. ' ' ..
    grant.granted_at .. ' ' .. grant.previous_at .. (grant.refused and ' r' or ''))
end

-- Drops the grants whose time in the window is over and takes their weight off the totals.
local function expire_grants(grants_key, weights_key, used_key, now)
  local gone = redis.call('zrangebyscore', grants_key, '-inf', now)
  if #gone == 0 then return end
  local images, tokens = 0, 0
  for _, id in ipairs(gone) do
    local value = redis.call('hget', weights_key, id)
    if value then
      local grant = read_grant(value)
      images = images + grant.images
      tokens = tokens + grant.tokens
    end
  end
  redis.call('hdel', weights_key, unpack(gone))
  redis.call('zremrangebyscore', grants_key, '-inf', now)
  redis.call('hincrby', used_key, 'images', -images)
  redis.call('hincrbyfloat', used_key, 'tokens', -tokens)
  redis.call('hincrby', used_key, 'requests', -#gone)
end

-- The lower of a configured limit (0 = none) and a learned one (nil = none); nil when neither.
local function lower_limit(configured, learned)
  configured = tonumber(configured) or 0
  learned = tonumber(learned)
  if configured <= 0 then return learned end
  if learned and learned < configured then return learned end
  return configured
end

-- The window in force: its length (ms, margin included), its allowance per dimension (nil =
-- unlimited) and the limits per minute it comes from. ARGV [1]–[4] are the configured images,
-- tokens and requests per minute and the minute's length, [8] the base margin — the same
-- positions in every script that includes this.
local function window_for(learned_key, argv)
  local learned = redis.call('hmget', learned_key, 'images', 'tokens', 'requests', 'margin', 'whole_seconds')
  local minute = tonumber(argv[4])
  local per_minute = {
    images = lower_limit(argv[1], learned[1]),
    tokens = lower_limit(argv[2], learned[2]),
    requests = lower_limit(argv[3], learned[3]),
  }
  -- Whole images (and requests) per window, at least a second long — a sixtieth of the
  -- minute, so that a shortened minute (tests) keeps the same shapes. A limit that is not a
  -- whole number a second (500/min is 8.3/s) gets a window a little longer than a second
  -- (9 per 1.08 s) — unless the provider showed it counts whole seconds and rounds down
  -- (`whole_seconds`, see rate-observe.lua): then it is held to 8 a second.
  local whole_seconds = learned[5] == '1'
  local second = minute / 60
  local q = second
  for _, dim in ipairs({'images', 'requests'}) do
    local limit = per_minute[dim]
    if limit then
      local per_second = limit / 60
      if not (whole_seconds and per_second >= 1) then
        q = math.max(q, math.ceil(per_second) * minute / limit)
      end
    end
  end
  local w = { per_minute = per_minute, q = q, whole_seconds = whole_seconds }
  if per_minute.images then w.images = math.max(1, math.floor(per_minute.images * q / minute + 1e-9)) end
  if per_minute.requests then w.requests = math.max(1, math.floor(per_minute.requests * q / minute + 1e-9)) end
  if per_minute.tokens then w.tokens = per_minute.tokens * q / minute end
  local margin = math.max(tonumber(argv[8]), tonumber(learned[4]) or 0)
  w.margin = margin
  w.ms = q * (1 + margin)
  return w
end
