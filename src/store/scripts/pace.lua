-- Reserves the provider account's next outbound-call slot (calls-per-second pacing shared by
-- every instance), timed by Redis' clock.
-- KEYS[1]  the next free slot (Unix µs)
-- ARGV[1]  µs between two calls   ARGV[2]  longest wait allowed (µs)
-- Returns the µs to wait before dialling, or -1 when the queue is longer than allowed (nothing
-- is reserved then).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local wait = slot - now
if wait > max_wait then return -1 end
local following = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', following), 'PX',
  math.floor((following - now) / 1000) + 1000)
return wait
