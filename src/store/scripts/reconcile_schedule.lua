-- Schedules a verification's next reconciliation check, timed by Redis' clock. One key only
-- (the index lives under its own hash tag, apart from every user's slot).
-- KEYS[1]  the reconciliation index (sorted set: verification id → due time, Unix ms)
-- ARGV[1]  verification id   ARGV[2]  ms from now   ARGV[3]  '1': only if earlier than scheduled
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], 'LT', due, ARGV[1])
else
  redis.call('ZADD', KEYS[1], due, ARGV[1])
end
return due
