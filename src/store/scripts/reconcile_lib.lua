-- The reconciliation index's one write, timed by Redis' clock. Prepended to
-- reconcile_schedule.lua and to create_verification.lua (which, on a single Redis node, schedules
-- the first check of the verification it creates in the same script).

-- Schedules `id`'s next check `delay_ms` from now in the index `key` (sorted set: verification
-- id → due time, Unix ms); with `earlier_only`, an earlier check already scheduled stays. `now_ms`:
-- Redis' clock if the caller read it already (nil: read here). Returns the due time.
local function schedule_check(key, id, delay_ms, earlier_only, now_ms)
  if not now_ms then
    local t = redis.call('TIME')
    now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  local due = now_ms + delay_ms
  if earlier_only then
    redis.call('ZADD', key, 'LT', due, id)
  else
    redis.call('ZADD', key, due, id)
  end
  return due
end

