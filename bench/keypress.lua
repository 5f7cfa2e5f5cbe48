-- wrk script: replays pre-signed keypress webhooks (written by `bench_peers setup`), cycling
-- through the verifications so every request is a valid, signed `gather` with Digits=5.
local data = dofile(os.getenv("BENCH_REQUESTS"))
local requests, i = {}, 0

function init(args)
  for _, r in ipairs(data) do
    requests[#requests + 1] = wrk.format("POST", r[1], {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = r[3],
    }, r[2])
  end
  i = math.random(#requests)
end

function request()
  i = i % #requests + 1
  return requests[i]
end
