-- wrk script for bench/search.py: thread i of $BENCH_THREADS sends paths i+1,
-- i+1+n, i+1+2n... of $BENCH_PATHS (one a line), each once, then stops; so
-- every path is sent exactly once, and leaves a file in $BENCH_FINISHED when done
-- (wrk waits out its duration otherwise). done() prints one JSON line of figures.
local counter = 0

function setup(thread)
  thread:set("first", counter)
  counter = counter + 1
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
end

function request()
  -- Past the end only while the thread stops: wrk asks before it notices.
  sent = math.min(sent + 1, #mine)
  return wrk.format("GET", mine[sent])
end

function response(status, headers, body)
  answered = answered + 1
  if answered == #mine then
    wrk.thread:stop()
    io.open(os.getenv("BENCH_FINISHED") .. "/thread-" .. first, "w"):close()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "errors": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max))
end
