-- Renews a lock's time-to-live only if it still holds the caller's token (RenderLocks).
-- KEYS: [1] the lock.
-- ARGV: [1] the holder's token, [2] the new time-to-live (ms).
-- Returns: 1 renewed, 0 the lock is someone else's or gone.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
