-- Shared by the wrk scripts of benches/load (loaded with dofile from each).
-- Everything comes from the environment so one script serves every server:
--   LOAD_TOKEN      the X-Vault-Token to send
--   LOAD_METHOD     HTTP method (default POST)
--   LOAD_BODY_FILE  file holding the request body (JSON), read once per thread
-- done() prints ONE line, "WRK_JSON {...}", that benches/load/report.py parses:
-- request count, duration, every wrk error counter (errors.status is wrk's
-- count of responses with a status above 399, i.e. what `--latency` prints as
-- "Non-2xx or 3xx responses"), latency percentiles in microseconds, and the
-- per-kind counts of the mixed workload when there are any.

function load_read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local s = f:read("*a")
  f:close()
  return s
end

load_threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(load_threads, thread)
end

local function num(v)
  if v == nil then return 0 end
  return tonumber(v) or 0
end

function done(summary, latency, requests)
  local e = summary.errors
  local kinds = {}
  for _, k in ipairs({ "n_encrypt", "n_decrypt", "n_read" }) do
    local total = 0
    for _, t in ipairs(load_threads) do total = total + num(t:get(k)) end
    if total > 0 then table.insert(kinds, string.format('"%s":%d', k, total)) end
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,'
      .. '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},"kinds":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    table.concat(kinds, ",")))
end
