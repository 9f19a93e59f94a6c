-- Adds an entry to the spool of paid images waiting for S3 if the spool's total, without the
-- entries that have expired, leaves room for it (ImageSpool#put).
-- KEYS: [1] sizes (hash: entry id → bytes), [2] expiry (sorted set: entry id → expiry ms),
--   [3] the entry (hash), all in the `{spool}` slot.
-- ARGV: [1] entry id, [2] now (ms), [3] time to live (ms), [4] the cap (bytes), [5] the entry's
--   bytes, [6] what the entry is about (JSON), [7…] the bodies, stored as fields 0, 1, ….
-- Returns: {1, bytes now used} when added (replacing an entry of the same id), {0, bytes used
--   by the other entries} when it does not fit.
-- An expired entry's own hash lapses by its TTL; here it only stops counting.

local now = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[1], id) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local used = 0
for _, size in ipairs(redis.call('HVALS', KEYS[1])) do used = used + tonumber(size) end
used = used - tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local bytes = tonumber(ARGV[5])
if used + bytes > tonumber(ARGV[4]) then return {0, used} end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'about', ARGV[6])
for i = 7, #ARGV do redis.call('HSET', KEYS[3], tostring(i - 7), ARGV[i]) end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], bytes)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return {1, used + bytes}
