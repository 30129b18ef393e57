--[[
  Reads one page of a database's log, checking the cursor in the same atomic step.
  KEYS[1] log stream, KEYS[2] meta hash
  ARGV[1] 'after' (ARGV[2] is an exclusive cursor to check) or 'from' (ARGV[2] is an
          inclusive start: '-' or '<ms>-0')
  ARGV[3] page size
  Returns { gap (0|1), entries }. A cursor below the retention watermark or beyond the
  newest id ever given is unknown: gap, and the page starts at the oldest entry.
]]
local log, meta = KEYS[1], KEYS[2]

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local gap = 0
local start = ARGV[2]
if ARGV[1] == 'after' then
  local trimmed = redis.call('HGET', meta, 'trimmed')
  local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  local newest = (top and top[1]) or trimmed
  if not newest or less(newest, ARGV[2]) or (trimmed and less(ARGV[2], trimmed)) then
    gap, start = 1, '-'
  else
    start = '(' .. ARGV[2]
  end
end
return { gap, redis.call('XRANGE', log, start, '+', 'COUNT', ARGV[3]) }
