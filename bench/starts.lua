-- wrk script: `POST /v1/tenants/bench/users/{user}/verifications`, a new user per request (so no
-- per-user rule ever refuses), registration of a valid US number; the stub provider answers
-- the Calls API at once.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local key = os.getenv("BENCH_KEY")
local n = 0

function request()
  n = n + 1
  local path = string.format("/v1/tenants/bench/users/s%d-%d/verifications", tid or 0, n)
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, '{"phone_number":"+1 425 555 1234","purpose":"registration"}')
end
