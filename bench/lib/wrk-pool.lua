-- wrk script for the S scenario: POSTs the bodies of a pool file (one JSON body per line) in turn,
-- each request formatted once in init(), and prints one JSON line with wrk's own counts and latency
-- quantiles (the distribution `--latency` prints, at microsecond resolution) for wrk-load.ts to read.
--
--   wrk -t1 -c64 -d8s -s bench/lib/wrk-pool.lua http://127.0.0.1:3000/api/events -- pool.txt

local requests = {}
local count = 0
local next_index = 0

function init(args)
  local path = args[1]
  if path == nil then error("usage: wrk ... -s wrk-pool.lua <url> -- <pool file>") end
  for line in io.lines(path) do
    if line ~= "" then
      count = count + 1
      requests[count] = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, line)
    end
  end
  if count == 0 then error("no bodies in " .. path) end
end

function request()
  next_index = next_index + 1
  if next_index > count then next_index = 1 end
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"wrk":{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
