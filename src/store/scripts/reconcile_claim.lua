-- Claims the verifications whose reconciliation check is due, for one instance: each claimed
-- entry is pushed `lease` ms into the future, so no other instance sees it meanwhile; the
-- claimer reschedules or removes it when done, and if it dies the lease runs out and another
-- instance takes the check over. Timed by Redis' clock.
-- KEYS[1]  the reconciliation index   ARGV[1]  most entries to claim   ARGV[2]  lease (ms)
-- Returns how long (ms) the oldest due check has been overdue (0: none due), then the claimed
-- verification ids.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local overdue = 0
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] and tonumber(oldest[2]) < now then
  overdue = now - tonumber(oldest[2])
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
end
table.insert(due, 1, tostring(overdue))
return due
