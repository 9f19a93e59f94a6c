-- Replaces a tenant's webhook secret, keeping the old one valid for a while
-- (WebhookSecrets#rotate).
-- KEYS: [1] the current secret, [2] the previous secret (same cluster slot).
-- ARGV: [1] the new secret, [2] how long the previous one stays valid (ms; 0 drops it).
-- Returns: 1.

local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if old and tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[2], old, 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
