-- wrk script for bench/search.py: thread i of $BENCH_THREADS sends paths i+1,
-- i+1+n, i+1+2n... of $BENCH_PATHS (one a line), each once, then stops; so
-- every path is sent exactly once, and leaves a file in $BENCH_FINISHED when done
-- (wrk waits out its duration otherwise). done() prints one JSON line: counts and
-- each request's latency, timed here (wrk's own histogram adds corrections for
-- coordinated omission, synthetic entries that a closed loop of one request per
-- connection does not need).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clock, timespec *now);
]]
local CLOCK_MONOTONIC = 1
local now = ffi.new("timespec")

local function microseconds()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
  return tonumber(now.tv_sec) * 1e6 + tonumber(now.tv_nsec) / 1e3
end

local counter = 0
local threads = {}

function setup(thread)
  thread:set("first", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  step = tonumber(os.getenv("BENCH_THREADS"))
  mine = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    if i % step == first then
      table.insert(mine, line)
    end
    i = i + 1
  end
  sent, answered = 0, 0
  latencies = {}
end

function request()
  -- Past the end only while the thread stops: wrk asks before it notices.
  sent = math.min(sent + 1, #mine)
  started = microseconds()
  return wrk.format("GET", mine[sent])
end

function response(status, headers, body)
  if answered == #mine then
    return  -- one wrk sent after the last, while stopping
  end
  answered = answered + 1
  latencies[answered] = string.format("%d", microseconds() - started)
  if answered == #mine then
    wrk.thread:stop()
    io.open(os.getenv("BENCH_FINISHED") .. "/thread-" .. first, "w"):close()
  end
end

function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    table.insert(all, table.concat(thread:get("latencies"), ", "))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "errors": %d, "latencies_us": [%s]}\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout,
    table.concat(all, ", ")))
end
