-- Sets a key only while a lock still holds the caller's token: work done under a lock is
-- vouched for only if the lock was never lost meanwhile (ResultCache#rebuildIndex).
-- KEYS: [1] the lock, [2] the key to set (same cluster slot).
-- ARGV: [1] the holder's token, [2] the value to set.
-- Returns: OK when set, 0 when the lock was not the caller's.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[2], ARGV[2]) end
return 0
