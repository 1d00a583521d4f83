-- One fixed request, repeated: $BENCH_METHOD (default GET) $BENCH_PATH with
-- the body $BENCH_BODY (JSON) if set.  wrk sends the request it built once,
-- so the client costs as little as it can.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local body = os.getenv("BENCH_BODY")
if body == "" then body = nil end
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = os.getenv("BENCH_PATH") or "/"
wrk.headers = bench.headers(body ~= nil)
wrk.body = body
