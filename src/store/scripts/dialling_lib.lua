-- The last step of a start before a provider may dial: marks the verification `dialling` (Unix
-- ms, Redis' clock), but only while it is still `calling` and the mark is on time: within the
-- dial budget of its creation (after which reconciliation may release it,
-- release_undialled.lua), and within the start's own deadline for this request (how long the
-- start has run since its creation was confirmed, plus the Redis deadline). A mark a Redis stall
-- held past that deadline was given up by its start, which did not dial: it is refused when it
-- lands, so it can never make a verification that was never dialled look dialled.
-- Prepended to mark_dialling.lua and to dial_gate_mark.lua.

-- key: the verification hash; budget_ms: the dial budget (ms after creation); deadline_ms: the
-- start's deadline for this mark (ms after creation); now_ms: Redis' clock if the caller read it
-- already (nil: read here). Returns 1 when marked (the start may dial), 0 when not.
local function mark_dialling(key, budget_ms, deadline_ms, now_ms)
  local v = redis.call('HMGET', key, 'status', 'created_at', 'dialling', 'created_ms')
  if v[1] ~= 'calling' then return 0 end
  -- Failing over to the next account: marked already (and so never released).
  if v[3] then return 1 end
  if not now_ms then
    local t = redis.call('TIME')
    now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  local created_ms = tonumber(v[4]) or tonumber(v[2]) * 1000
  if now_ms > created_ms + math.min(budget_ms, deadline_ms) then return 0 end
  redis.call('HSET', key, 'dialling', now_ms)
  return 1
end

