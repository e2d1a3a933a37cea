-- lastro orders, the baseline's write.lua translated: 100% POST /api/orders.
-- Environment: BENCH_TOKEN (bearer token).
wrk.method = "POST"
wrk.path = "/api/orders"
wrk.body = '{"customer":"cliente-wrk","items":[{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price":19.9}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
