-- Schedules the retry of an outbox entry after a failed attempt, atomically with taking it out of
-- the consumer group's pending list, so exactly one of the two always holds it.
-- KEYS[1] retry set   KEYS[2] attempts hash   KEYS[3] outbox stream
-- ARGV[1] consumer group   ARGV[2] entry id   ARGV[3] delay (ms)   ARGV[4] attempts made
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
return 1
