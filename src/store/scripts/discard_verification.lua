-- Drops a verification that was refused before anything was dialled (a rate limit was hit):
-- the record and, if it holds it, the user's live-verification slot.
-- KEYS[1] verification hash   KEYS[2] the user's live slot   ARGV[1] the verification id
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
