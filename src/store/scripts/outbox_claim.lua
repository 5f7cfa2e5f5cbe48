-- Leases due retries of the event outbox: members of the retry set whose time has come get a
-- new score (now + lease) so no other instance takes them; one that dies mid-attempt loses the
-- lease and the retry becomes due again. Timed by Redis' clock.
-- KEYS[1]  retry set (outbox entry id → due, Unix ms)
-- ARGV[1]  lease (ms)   ARGV[2]  most entries to take
-- Returns  the leased outbox entry ids
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), id)
end
return due
