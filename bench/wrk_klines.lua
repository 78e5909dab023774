-- wrk (Debian's `wrk`) load for the gateway benchmarks: back-to-back GET /fapi/v1/klines, each for a random
-- symbol and interval of the ones given, with the given limit and no startTime (what a bot asks at every close).
--   wrk -t1 -c50 -d5s -s bench/wrk_klines.lua http://127.0.0.1:PORT -- 499 BTCUSDT,ETHUSDT 1m,3m
-- At the end it prints one line "WRK_JSON {...}": requests, errors (socket and non-2xx), p50/p99 in ms.
local limit, symbols, intervals = "499", {}, {}
local counter = 0

local function split(text)
  local out = {}
  for item in string.gmatch(text, "[^,]+") do out[#out + 1] = item end
  return out
end

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  limit, symbols, intervals = args[1], split(args[2]), split(args[3])
  math.randomseed(1000 + (seed or 0))
end

function request()
  local path = "/fapi/v1/klines?symbol=" .. symbols[math.random(#symbols)] .. "&interval=" ..
      intervals[math.random(#intervals)] .. "&limit=" .. limit
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "errors": %d, "non_2xx": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f}\n', summary.requests, e.connect + e.read + e.write + e.timeout + e.status, e.status,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
