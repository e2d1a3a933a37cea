-- lastro orders: GET /api/orders/{id}, ids drawn uniformly from the seeded 1..BENCH_MAX_ID.
-- Environment: BENCH_TOKEN (bearer token), BENCH_MAX_ID (orders seeded).
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "100000")
local headers = {["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")}

init = function(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

request = function()
  return wrk.format("GET", "/api/orders/" .. math.random(max_id), headers)
end
