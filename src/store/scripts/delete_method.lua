-- Delete one method; move the default to the best remaining enabled option (or none).
-- KEYS[1] the user's methods hash   KEYS[2] the user's audit stream
-- ARGV[1] method id   ARGV[2] audit stream cap
-- ARGV[3] the mobile phone's method id   ARGV[4] the alternate mobile's method id
-- ARGV[5] enabled default options (a mask, see methods_lib.lua)
-- Returns {'ok', deleted method JSON, default or '', previous default or '', changed 0/1}
--   | {'missing'} | {'has_alternate'}
local load_methods, enabled_options, backed, find_option, repair_default, put_method, audit,
  default_changed = methods_lib()
local mkey, akey = KEYS[1], KEYS[2]
local id, cap = ARGV[1], tonumber(ARGV[2])
local options = enabled_options(ARGV[5])
local methods, default = load_methods(mkey)

local method = methods[id]
if not method then return {'missing'} end
-- An alternate mobile needs a mobile (the reference product's rule).
if id == ARGV[3] and methods[ARGV[4]] then return {'has_alternate'} end

local stored = redis.call('HGET', mkey, 'm:' .. id)
redis.call('HDEL', mkey, 'm:' .. id)
methods[id] = nil
local phone = ''
if method.kind == 'phone' then
  -- Registrations store the masked number; older records mask all but the last two digits.
  phone = method.phone_masked
  if not phone then
    local n = tostring(method.phone_number or '')
    phone = string.rep('*', math.max(#n - 2, 0)) .. string.sub(n, -2)
  end
end
audit(akey, cap, {'action', 'method.deleted', 'outcome', 'deleted', 'method', id,
  'kind', method.kind, 'phone', phone})

local new, changed = repair_default(mkey, default, options, methods)
if changed then default_changed(akey, cap, new, default, 'method_deleted') end
return {'ok', stored, new or '', default or '', changed and 1 or 0}
