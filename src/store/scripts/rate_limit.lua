-- Checks every rate limit of one call and, only if all pass, records the call in each of them
-- (all-or-nothing), timed by Redis' clock. Sliding windows: one sorted set per limit, members are
-- verification ids scored by the time they were counted (Unix ms).
-- KEYS[i]   the sorted set of limit i (all in one tenant's hash slot)
-- ARGV[1]   member to record (the verification id)
-- ARGV[2i], ARGV[2i+1]   max calls and window (ms) of limit i; max 0 = limit off
-- Returns {0, 0} when admitted, else {i, ms until limit i admits a call} for the limit that
-- frees up last (so Retry-After is honest when several limits are hit at once).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local worst, worst_wait = 0, -1
for i, key in ipairs(KEYS) do
  local max, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if max > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    if count >= max then
      -- The (count - max + 1) oldest calls must leave the window; the last of them decides.
      local entry = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
      local wait = tonumber(entry[2]) + window - now
      if wait > worst_wait then worst, worst_wait = i, wait end
    end
  end
end
if worst > 0 then return {worst, worst_wait} end
for i, key in ipairs(KEYS) do
  local max, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if max > 0 then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
  end
end
return {0, 0}
