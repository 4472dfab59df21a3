-- range.lua: a wrk script asking, on every request, one random single byte
-- range of 64 KiB to 1 MiB inside a file of BENCH_RANGE_SIZE bytes (default
-- 50 MiB), like a video player seeking.
--
-- The generator is seeded with BENCH_SEED (default 42) plus the thread
-- number, so two runs with the same seed (preau, then nginx) ask the same
-- ranges in the same order.

local size = tonumber(os.getenv("BENCH_RANGE_SIZE") or "52428800")
local seed = tonumber(os.getenv("BENCH_SEED") or "42")
local min_len, max_len = 65536, 1048576
if size < max_len then
  max_len = size
  if min_len > size then min_len = size end
end

local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(seed + 7919 * (thread_id or 0))
end

function request()
  local len = math.random(min_len, max_len)
  local first = math.random(0, size - len)
  wrk.headers["Range"] = "bytes=" .. first .. "-" .. (first + len - 1)
  return wrk.format(nil, nil, wrk.headers)
end
