-- wrk script of the create phase of scripts/bench-vs-pocketbase: every request POSTs a new
-- record with values that vary (amount 0.00–9,999.99, stage new/won/lost, a 2026 close date).
-- BENCH_DATES=datetime writes the date as PocketBase's date field stores it
-- ("2026-03-14 00:00:00.000Z"); otherwise as a plain date ("2026-03-14"), as Tessera's date
-- field takes it. Both are the same value.
local datetime = os.getenv("BENCH_DATES") == "datetime"
local stages = { "new", "won", "lost" }

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
  n = n + 1
  local close = string.format("2026-%02d-%02d", math.random(12), math.random(28))
  if datetime then
    close = close .. " 00:00:00.000Z"
  end
  local body = string.format(
    '{"title":"Deal %d-%d","amount":%d.%02d,"stage":"%s","close":"%s","email":"c%d.%d@example.com"}',
    tid or 0, n, math.random(0, 9999), math.random(0, 99), stages[math.random(3)], close, tid or 0, n)
  return wrk.format(nil, nil, nil, body)
end
