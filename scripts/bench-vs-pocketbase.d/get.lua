-- wrk script of the get-by-id phase of scripts/bench-vs-pocketbase: every request reads one
-- record picked at random from the ids in the file BENCH_IDS (one a line), at BENCH_PREFIX .. id.
local prefix = assert(os.getenv("BENCH_PREFIX"), "BENCH_PREFIX is not set")
local file = assert(os.getenv("BENCH_IDS"), "BENCH_IDS is not set")
local ids = {}
for line in io.lines(file) do
  if line ~= "" then
    ids[#ids + 1] = line
  end
end
assert(#ids > 0, "no ids in BENCH_IDS")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)])
end
