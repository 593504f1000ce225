-- wrk script for bench/ingest.py: replay pre-signed requests, one per request.
--
--   wrk ... -s bench/signed.lua URL -- DATA_FILE THREADS [OFFSET]
--
-- wrk's Lua has no HMAC-SHA256, so bench/ingest.py signs every request beforehand
-- and writes them, fully formatted, to DATA_FILE as records of
-- "<byte length>\n<raw HTTP/1.1 request>". Thread i of THREADS takes records
-- i, i + THREADS, ... so no two threads send the same event id, and each thread
-- cycles through its share in order. A run that sends more requests than a thread
-- holds wraps around (repeats ids); done() reports it ("wrapped") so the driver can
-- refuse to call such a run "new reports". OFFSET (default 0) starts every thread that
-- many requests into its share, so runs can continue where the last one stopped.
--
-- done() prints one line, "BENCH_RESULT {json}", that the driver parses. wrk counts
-- every answer with a status above 399 in errors.status; a 3xx would be a bug here
-- and none is sent by any of the servers measured.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   offset = tonumber(args[3] or "0")
   local file = assert(io.open(path, "rb"))
   records = {}
   sent = offset
   local index = 0
   while true do
      local header = file:read("*l")
      if not header then break end
      local raw = file:read(tonumber(header))
      if index % nthreads == id then
         records[#records + 1] = raw
      end
      index = index + 1
   end
   file:close()
   held = #records
   assert(held > 0, "no requests for thread " .. id .. " in " .. path)
end

function request()
   sent = sent + 1
   return records[(sent - 1) % held + 1]
end

function done(summary, latency, requests)
   local issued, wrapped = 0, false
   for _, thread in ipairs(threads) do
      local count = thread:get("sent")
      issued = issued + count - thread:get("offset")
      if count > thread:get("held") then wrapped = true end
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "status_errors": %d,'
         .. ' "socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d,'
         .. ' "issued": %d, "wrapped": %s}\n',
      summary.requests, summary.duration, errors.status,
      errors.connect + errors.read + errors.write + errors.timeout,
      latency:percentile(50.0), latency:percentile(99.0), latency.max,
      issued, tostring(wrapped)))
end
