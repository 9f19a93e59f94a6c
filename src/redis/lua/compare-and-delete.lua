-- Deletes a key only if it still holds the caller's token: a lock is released by its holder
-- alone, never after it lapsed and someone else took it (render locks, the cache rebuild lock).
-- KEYS: [1] the lock.
-- ARGV: [1] the holder's token.
-- Returns: 1 deleted, 0 the key held another value or none.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
