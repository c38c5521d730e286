-- wrk script of the HTTP benchmark (bench/http_read.py): every request is PATH with the next
-- reader's bearer token, so each connection rotates over all the readers.
--
--   wrk -t2 -c8 -d3s -s bench/wrk_feed.lua http://127.0.0.1:18100 -- TOKENS_FILE PATH THREADS
--
-- TOKENS_FILE holds one token a line; THREADS is wrk's -t (where each thread starts). done() prints one JSON line: requests, non-2xx
-- responses (counted in response(), every status outside 200-299), socket errors and the
-- latency percentiles in microseconds.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      tokens[#tokens + 1] = "Bearer " .. line
    end
  end
  assert(#tokens > 0, "no tokens in " .. args[1])
  path = args[2]
  -- Each thread starts at its own share of the readers.
  next_token = math.floor(id * #tokens / tonumber(args[3])) % #tokens
  non2xx = 0
end

function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", path, { Authorization = tokens[next_token] })
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f, "stdev": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, latency.stdev))
end
