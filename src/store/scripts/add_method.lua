-- Add one non-phone method, atomically with its audit entry and the default's upkeep.
-- KEYS[1] the user's methods hash   KEYS[2] the user's audit stream
-- ARGV[1] method id   ARGV[2] kind   ARGV[3] method JSON (without created_at)
-- ARGV[4] most methods of this kind a user may have
-- ARGV[5] field that must be unique among methods of this kind ('' = none)
-- ARGV[6] audit stream cap   ARGV[7] enabled default options (a mask, see methods_lib.lua)
-- Returns {'ok', created_at, default or '', previous default or '', changed 0/1}
--   | {'limit'} | {'duplicate'}
local load_methods, enabled_options, backed, find_option, repair_default, put_method, audit,
  default_changed = methods_lib()
local mkey, akey = KEYS[1], KEYS[2]
local id, kind, cap = ARGV[1], ARGV[2], tonumber(ARGV[6])
local method = cjson.decode(ARGV[3])
local unique = ARGV[5]
local options = enabled_options(ARGV[7])
local methods, default = load_methods(mkey)

local count = 0
for _, m in pairs(methods) do
  if m.kind == kind then
    count = count + 1
    if unique ~= '' and m[unique] == method[unique] then return {'duplicate'} end
  end
end
if count >= tonumber(ARGV[4]) then return {'limit'} end
if methods[id] then return {'duplicate'} end

local now = tonumber(redis.call('TIME')[1])
methods[id] = put_method(mkey, id, kind, method, now)
audit(akey, cap, {'action', 'method.registered', 'outcome', 'registered', 'method', id,
  'kind', kind})

local new, changed = repair_default(mkey, default, options, methods)
if changed then default_changed(akey, cap, new, default, 'method_registered') end
return {'ok', now, new or '', default or '', changed and 1 or 0}
