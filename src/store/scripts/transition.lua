-- (methods_lib.lua — the one writer of stored methods and the one rule that picks the default
-- sign-in method — is put where the line `-- @methods_lib` stands, in the branch that registers
-- a phone, rather than in front: only that branch needs it, and defining it costs every call.)
-- One guarded state transition of a verification: the whole of a webhook's Redis work in one
-- round trip. Terminal states never change, so duplicated, late or reordered webhooks are no-ops.
--
-- KEYS[1] verification hash   KEYS[2] the user's methods hash   KEYS[3] the user's audit stream
-- KEYS[4] the user's live-verification slot (released when this verification ends)
-- KEYS[5] the user's fraud block (set by a fraud report for the verification's fraud_block_secs)
-- ARGV[1] event: placed | refused | uncertain | voice | gather | status | machine | settle | cancel
-- ARGV[2] provider call id (CallSid), '' when unknown
-- ARGV[3] how to announce changes: PUBLISH, or SPUBLISH (sharded pub/sub, on a cluster: the
--         channel carries the user's hash tag, so it lives in the keys' slot)
-- ARGV[4] pub/sub channel announcing this verification's changes (long-poll wake-ups)
-- ARGV[5] audit stream cap (entries)
-- ARGV[6] the provider account the webhook came from (its URL names it, its signature was
--         checked with its credentials), '' for our own events (placed, refused, reconciliation):
--         a webhook from any account but the one that placed the call changes nothing, binds
--         no call id ('foreign'). A verification stored without `provider` counts as `twilio`
--         (the single-provider account).
-- ARGV[7…] per event:
--   placed:  (none); with no call id (ARGV[2] ''), records placed_at until a callback binds one
--   refused: reason (a `FailureReason`, src/verification/mod.rs), provider error text; a no-op
--            once a call is bound (a call that reported back was placed, whatever we heard)
--   voice:   (none); only the first delivery plays prompt 1 (duplicates repeat it, uncounted)
--   gather:  digits ('' = silence), step ('prompt' | 'fraud'), max prompts, the prompt number
--            the gather was asked by ('' = unknown): a wrong key or silence from an older
--            prompt's gather (a duplicated delivery) is answered without consuming a prompt
--   status:  progress ('ringing' | 'answered' | 'end' | other: ignored), and for 'end' the
--            terminal status and failure reason (mapped from the provider's status in Rust:
--            `CallProgress::ending` in src/provider/mod.rs), then the hang-up grace (ms)
--   uncertain: the provider error text (placing the call had an unknown outcome): recorded
--            as provider_error, the verification stays open
--   machine: (none) answering-machine detection: failed / voicemail
--   settle:  (none) only what is due by time (expiry, a hang-up whose grace is over)
--   cancel:  (none) the portal ends a live verification: canceled / canceled (an ended one is
--            'gone', its status unchanged)
--
-- The hang-up grace: a 'completed' (reason hung_up) before approval does not end the
-- verification at once; it records settle_at = now + grace (ms). A '#' from the bound call
-- before settle_at still approves; the first event at or after settle_at ends it hung_up
-- (reconciliation sends 'settle' then). Other endings (busy, no-answer, failed, canceled) end
-- it at once.
-- Returns one space-separated string (one bulk reply decodes far cheaper than a 9-element array,
-- and this runs on every keypress):
--   'outcome status locale purpose prompts ended now updated_at reason'
--   ended = 1 when this call moved the verification into a terminal state (emit its event once)
--   now = Redis' clock (Unix seconds); updated_at only for placed | refused (the API answers
--   with the verification's view), else empty; reason last (it may contain spaces), empty
--   unless the verification failed.
local vkey, mkey, akey = KEYS[1], KEYS[2], KEYS[3]
local event, call_sid, publish, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local audit_cap = tonumber(ARGV[5])
local from_account = ARGV[6]

-- Only what every event needs; a re-prompt (the commonest webhook) reads nothing else.
local v = redis.call('HMGET', vkey, 'status', 'call_sid', 'expires_at', 'prompts', 'locale',
  'purpose', 'reason', 'settle_at', 'provider')
local status = v[1]
if not status then return 'missing    0 0 0  ' end
local ended = 0
local prompts = tonumber(v[4]) or 0
local clock = redis.call('TIME')
-- Redis' clock as it came (a string) for the reply and the hash, as a number for comparisons:
-- turning a Lua number into a string costs a formatted print each time.
local now_s = clock[1]
local now = tonumber(now_s)
local now_ms = now * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Plain comparisons rather than lookup tables: a table built on every call costs more.
local terminal = status == 'approved' or status == 'failed' or status == 'expired'
  or status == 'canceled' or status == 'fraud_reported'

local updated_at = nil

local function reply(outcome)
  if event == 'placed' or event == 'refused' then
    updated_at = updated_at or redis.call('HGET', vkey, 'updated_at')
  end
  -- One concatenation of strings (no table, no number formatting but a changed prompt count).
  return outcome .. ' ' .. status .. ' ' .. (v[5] or '') .. ' ' .. (v[6] or '') .. ' '
    .. prompts .. ' ' .. (ended == 1 and '1' or '0') .. ' ' .. now_s .. ' ' .. (updated_at or '')
    .. ' ' .. (v[7] or '')
end

-- Only the account that placed the call speaks for it (checked before any call id binds).
if from_account ~= '' then
  local placed_by = v[9]
  if not placed_by or placed_by == '' then placed_by = 'twilio' end
  if placed_by ~= from_account then return reply('foreign') end
end

-- The first call id we hear of is the call we placed; any other is refused.
if call_sid ~= '' then
  if v[2] and v[2] ~= '' then
    if v[2] ~= call_sid then return reply('mismatch') end
  elseif terminal then
    return reply('gone')
  else
    redis.call('HSET', vkey, 'call_sid', call_sid)
  end
end

-- The helpers that change or end a verification, built by `changes()` on the paths that need
-- them: each closure costs Redis about 2 k instructions per call, and the commonest webhook (a
-- wrong key or silence that re-prompts an answered call) needs none of them.
local built = nil
local function changes()
  if built then return built end
  -- What ending a verification needs (audit, method registration, fraud block), read once.
  local details = nil
  local function detail()
    if not details then
      local d = redis.call('HMGET', vkey, 'phone', 'phone_type', 'method_id', 'phone_masked',
        'fraud_block_secs', 'provider', 'default_options')
      details = {phone = d[1], phone_type = d[2], method_id = d[3], phone_masked = d[4],
        fraud_block_secs = d[5], provider = d[6], default_options = d[7]}
    end
    return details
  end

  local function audit_end(action, outcome, reason)
    redis.call('XADD', akey, 'MAXLEN', '~', audit_cap, '*',
      'action', action, 'outcome', outcome, 'verification', string.sub(vkey, -48),
      'purpose', v[6], 'method', detail().method_id or '', 'phone', detail().phone_masked or '',
      'reason', reason or '', 'provider', detail().provider or '')
  end

  local function move(new_status)
    redis.call('HSET', vkey, 'status', new_status, 'updated_at', now_s)
    status = new_status
    updated_at = now_s
    redis.call(publish, channel, new_status)
  end

  local function finish(new_status, reason)
    move(new_status)
    ended = 1
    -- The outbox, in the same atomic step: the portal's events for this end are owed until
    -- whoever announces them clears the mark (src/verification/end.rs), so an end whose reply
    -- was lost (a timeout) is still announced — by the webhook's retry or by reconciliation.
    -- A start's own refusal is answered to the portal directly, not announced.
    if event ~= 'refused' then redis.call('HSET', vkey, 'announce', '1') end
    if redis.call('GET', KEYS[4]) == string.sub(vkey, -48) then redis.call('DEL', KEYS[4]) end
    if reason then
      redis.call('HSET', vkey, 'reason', reason)
      v[7] = reason
    end
    if new_status == 'approved' then
      audit_end('verification.approved', 'approved', nil)
    elseif new_status == 'fraud_reported' then
      audit_end('verification.fraud_reported', 'fraud_reported', nil)
    else
      audit_end('verification.failed', new_status, reason)
    end
  end

  -- An ended verification answers its own call with its own closing (a repeated '#' after the
  -- approval hears "thank you", not "no longer valid").
  local function closing()
    if event == 'gather' or event == 'voice' then
      if status == 'approved' then return reply('approved') end
      if status == 'fraud_reported' then return reply('fraud_reported') end
      if status == 'failed' and v[7] == 'no_input' then return reply('no_input') end
    end
    return reply('gone')
  end

  built = {move = move, finish = finish, closing = closing, detail = detail,
    audit_end = audit_end}
  return built
end

if terminal then return changes().closing() end
if now >= tonumber(v[3]) then
  changes().finish('expired', 'expired')
  return reply('gone')
end
-- The call hung up before approval and the grace for a '#' on its way is over.
if v[8] and now_ms >= tonumber(v[8]) then
  changes().finish('failed', 'hung_up')
  return changes().closing()
end

if event == 'placed' and call_sid == '' and not (v[2] and v[2] ~= '') then
  -- Placed without a call id (the provider named none): the first callback binds it, and
  -- reconciliation waits for that from placed_at.
  redis.call('HSET', vkey, 'placed_at', now)
  return reply('ok')
elseif event == 'placed' or event == 'settle' then
  return reply('ok')

elseif event == 'cancel' then
  changes().finish('canceled', 'canceled')
  return reply('ok')

elseif event == 'uncertain' then
  redis.call('HSET', vkey, 'provider_error', ARGV[7], 'uncertain_at', now)
  return reply('ok')

elseif event == 'refused' then
  if v[2] and v[2] ~= '' then return reply('ok') end
  changes().finish('failed', ARGV[7])
  redis.call('HSET', vkey, 'provider_error', ARGV[8])
  return reply('ok')

elseif event == 'machine' then
  changes().finish('failed', 'voicemail')
  return reply('voicemail')

elseif event == 'voice' then
  if status ~= 'answered' then changes().move('answered') end
  if prompts == 0 then prompts = redis.call('HINCRBY', vkey, 'prompts', 1) end
  return reply('prompt')

elseif event == 'gather' then
  local digits, step, max_prompts = ARGV[7], ARGV[8], tonumber(ARGV[9])
  local asked_by = tonumber(ARGV[10])
  if status ~= 'answered' then changes().move('answered') end
  if step == 'fraud' and digits == '#' and redis.call('HGET', vkey, 'fraud_asked') == '1' then
    changes().finish('fraud_reported', nil)
    local block_secs = tonumber(changes().detail().fraud_block_secs) or 0
    if block_secs > 0 then
      redis.call('SET', KEYS[5], string.sub(vkey, -48), 'EX', block_secs)
    end
    return reply('fraud_reported')
  elseif step == 'prompt' and digits == '#' then
    changes().finish('approved', nil)
    if v[6] == 'registration' then
      -- @methods_lib
      local load_methods, enabled_options, _, _, repair_default, put_method, _, default_changed =
        methods_lib()
      local d = changes().detail()
      -- The fields of Rust's `MethodDetails::Phone`; phone_masked lets a later deletion audit
      -- the number without unmasking it.
      put_method(mkey, d.method_id, 'phone', {phone_number = d.phone,
        phone_type = d.phone_type, phone_masked = d.phone_masked}, now)
      changes().audit_end('method.registered', 'registered', nil)
      -- The default's upkeep by the library's rule, as for any other new method, under the
      -- options the tenant policy enabled when the call started (stored with the verification
      -- as a mask). A verification stored without them (by an older version) leaves the stored
      -- default alone: reads apply the rule anyway.
      if d.default_options then
        local methods, default = load_methods(mkey)
        local options = enabled_options(d.default_options)
        local new, changed = repair_default(mkey, default, options, methods)
        if changed then
          default_changed(akey, audit_cap, new, default, 'method_registered',
            string.sub(vkey, -48))
        end
      end
    end
    return reply('approved')
  elseif step == 'prompt' and digits == '0' then
    -- Remembered: only a gather that asked "press # to confirm" can report fraud.
    redis.call('HSET', vkey, 'fraud_asked', '1')
    return reply('confirm_fraud')
  end
  -- A wrong key or silence: prompt again, or give up politely. A repeated delivery of an older
  -- prompt's gather is answered the same way without consuming a prompt.
  local stale = asked_by ~= nil and asked_by < prompts
  if stale then
    if digits == '' then return reply('reprompt_silence') end
    return reply('reprompt_invalid')
  end
  if prompts >= max_prompts then
    changes().finish('failed', 'no_input')
    return reply('no_input')
  end
  prompts = redis.call('HINCRBY', vkey, 'prompts', 1)
  if digits == '' then return reply('reprompt_silence') end
  return reply('reprompt_invalid')

elseif event == 'status' then
  local progress, end_status, end_reason = ARGV[7], ARGV[8], ARGV[9]
  local grace_ms = tonumber(ARGV[10]) or 0
  if progress == 'ringing' then
    if status == 'calling' then changes().move('ringing') end
  elseif progress == 'answered' then
    if status ~= 'answered' then changes().move('answered') end
  elseif end_status == 'failed' and end_reason == 'hung_up' and grace_ms > 0 then
    if not v[8] then redis.call('HSET', vkey, 'settle_at', now_ms + grace_ms) end
    return reply('deferred')
  elseif end_status ~= '' then
    changes().finish(end_status, end_reason)
  end
  return reply('ok')
end
return redis.error_reply('unknown event ' .. tostring(event))
