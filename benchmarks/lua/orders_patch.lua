-- lastro orders: PATCH /api/orders/{id} {"notes"} with a real If-Match, the version learned from each
-- response's ETag.
--
-- wrk -t1 runs every connection in one Lua state, and response() comes before that connection's next
-- request(). Each run gets its own never-patched orders (version 1) in a status that may still change
-- (received, in_production, ready), listed one id a line in the file BENCH_IDS_FILE. An order is PATCHed by
-- one connection at a time: request() takes an order off the queue of those not in flight (or a fresh one
-- from the file when every known order is in flight) and sends its last known ETag. Each request carries
-- X-Request-ID "bench-patch-<id>-<version>", which lastro echoes on every response, so response() knows
-- the order whatever the status: after a 200 it queues the order again with the version of the ETag;
-- after a 503 (shed before the handler, or a unit of work rolled back) with the version it sent. A 412
-- would mean a stale ETag: it counts as non-2xx, as would a 409 for an order that can no longer change.
-- Environment: BENCH_TOKEN (bearer token), BENCH_IDS_FILE.
local token = os.getenv("BENCH_TOKEN") or ""
local fresh, next_fresh = {}, 1
for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
  fresh[#fresh + 1] = tonumber(line)
end
local queue, head, tail = {}, 1, 0 -- orders not in flight, as {id, version}
local body = '{"notes":"checked by the benchmark"}'

request = function()
  local id, version
  if head <= tail then
    id, version = queue[head][1], queue[head][2]
    queue[head] = nil
    head = head + 1
  else
    -- The runner lists more orders than connections; past the end, the last one is reused.
    id, version = fresh[math.min(next_fresh, #fresh)], 1
    next_fresh = next_fresh + 1
  end
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["If-Match"] = '"' .. version .. '"',
    ["X-Request-ID"] = "bench-patch-" .. id .. "-" .. version,
  }
  return wrk.format("PATCH", "/api/orders/" .. id, headers, body)
end

local function requeue(id, version)
  tail = tail + 1
  queue[tail] = {id, version}
end

response = function(status, headers, body)
  local sent = headers["x-request-id"] or headers["X-Request-ID"] or ""
  local id, version = string.match(sent, "^bench%-patch%-(%d+)%-(%d+)$")
  id, version = tonumber(id), tonumber(version)
  if status == 200 then
    local etag = headers["etag"] or headers["ETag"] or headers["Etag"]
    id = id or tonumber(string.match(body, '"id":(%d+)'))
    version = etag and tonumber(string.match(etag, "(%d+)"))
    if id and version then
      requeue(id, version)
    end
  elseif status == 503 and id and version then
    requeue(id, version)
  end
end
