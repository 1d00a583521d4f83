-- Shared by every benchmark script (loaded with dofile): the bearer token
-- from $TOKEN, per-thread ids, the seeded id list, and a done() that prints
-- one machine-readable line for tests/bench/bench.py:
--   BENCH_RESULT {"requests":...,"p50_us":...,...}
local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_no", thread_count)
   table.insert(threads, thread)
end

bench = {}

-- Headers for an API request; content: add Content-Type: application/json.
function bench.headers(content)
   local h = {}
   local token = os.getenv("TOKEN")
   if token and token ~= "" then
      h["Authorization"] = "Bearer " .. token
   end
   if content then
      h["Content-Type"] = "application/json"
   end
   return h
end

-- Seeds math.random differently in every thread (call from init()).
function bench.seed()
   math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
   for _ = 1, 10 do math.random() end
end

-- The ids of seeded orders, one per line, from $BENCH_IDS.
function bench.read_ids()
   local path = os.getenv("BENCH_IDS")
   local ids = {}
   local f = assert(io.open(path, "r"), "cannot open BENCH_IDS " .. tostring(path))
   for line in f:lines() do
      if #line > 0 then ids[#ids + 1] = line end
   end
   f:close()
   assert(#ids > 0, "no ids in " .. path)
   return ids
end

-- Counters a script keeps per thread (set as globals in the thread's state);
-- done() sums them.  nil: the script does not count non-2xx itself, and
-- wrk's own count of status >= 400 is used.
local counters = {"non2xx", "posts", "patches", "flows", "gets", "lists"}

function done(summary, latency, requests)
   local sums, counted = {}, {}
   for _, name in ipairs(counters) do
      sums[name] = 0
      for _, t in ipairs(threads) do
         local v = t:get(name)
         if v ~= nil then
            sums[name] = sums[name] + v
            counted[name] = true
         end
      end
   end
   local e = summary.errors
   local extra = {}
   for _, name in ipairs(counters) do
      if counted[name] and name ~= "non2xx" then
         extra[#extra + 1] = string.format('"%s":%d', name, sums[name])
      end
   end
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
      '"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
      '"errors_timeout":%d,"errors_status":%d,"non2xx":%s,"extra":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, e.status,
      counted.non2xx and tostring(sums.non2xx) or "null",
      table.concat(extra, ",")))
end
