-- wrk script for the benchmark's reads (see load.py): GET each path of a file in turn,
-- optionally stop after a number of completed requests, and print the figures as one line
-- of JSON (latencies in microseconds).
--
--   wrk -t1 -c4 -d300s -s rotate.lua http://127.0.0.1:8000 -- paths.txt [requests clients marker]
--
-- requests: stop sending once about that many have completed (0 or absent: run for -d);
-- clients: the connections (-c), so that the stop comes when the last of them is answered;
-- marker: a file created at that moment. wrk's main thread sleeps for the whole -d
-- whatever the threads do, so the caller watches for the marker and then sends SIGINT,
-- which ends the sleep, and wrk reports as usual.

local requests = {}
local next_index = 0
local sent = 0
local stop_after = 0
local marker = nil

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("GET", line)
    end
  end
  local wanted = tonumber(args[2] or "0") or 0
  if wanted > 0 then
    -- Closed loop: when request n is sent, n - clients have completed.
    stop_after = wanted + (tonumber(args[3] or "1") or 1)
    marker = args[4]
  end
end

function request()
  next_index = next_index % #requests + 1
  sent = sent + 1
  if stop_after > 0 and sent == stop_after then
    wrk.thread:stop()
    if marker then
      local f = io.open(marker, "w")
      if f then f:close() end
    end
  end
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"n": %d, "min": %.1f, "max": %.1f, "mean": %.1f, '
      .. '"p50": %.1f, "p95": %.1f, "p99": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    summary.requests, latency.min, latency.max, latency.mean,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)
  ))
end
