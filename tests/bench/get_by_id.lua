-- GET /orders/{id} for ids drawn at random from the seeded orders
-- ($BENCH_IDS: a uniform sample over the whole table, so reads touch cold
-- and hot pages alike).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local reqs

function init(args)
   bench.seed()
   local headers = bench.headers(false)
   reqs = {}
   for i, id in ipairs(bench.read_ids()) do
      reqs[i] = wrk.format("GET", "/orders/" .. id, headers)
   end
end

function request()
   return reqs[math.random(#reqs)]
end
