--[[
  Applies retention: first by count, then by age, like the memory reference.
  KEYS[1] log stream, KEYS[2] meta hash
  ARGV[1] max count (0: any), ARGV[2] cutoff in ms (0: any age; entries older are removed)
  Returns how many entries were removed. The id of the newest removed entry becomes the
  watermark `trimmed`: cursors below it have lost messages, the watermark itself has not.
]]
local log, meta = KEYS[1], KEYS[2]
local maxCount, cutoff = tonumber(ARGV[1]), tonumber(ARGV[2])
local CHUNK = 1000
local removed, lastRemoved = 0, nil

if maxCount > 0 then
  local drop = redis.call('XLEN', log) - maxCount
  if drop > 0 then
    -- Walk to the drop-th entry in chunks to keep the script's memory bounded.
    local start, left = '-', drop
    while left > 0 do
      local page = redis.call('XRANGE', log, start, '+', 'COUNT', math.min(left, CHUNK))
      if #page == 0 then break end
      lastRemoved = page[#page][1]
      start, left = '(' .. lastRemoved, left - #page
    end
    removed = removed + redis.call('XTRIM', log, 'MAXLEN', maxCount)
  end
end

if cutoff > 0 then
  local minId = string.format('%d-0', cutoff)
  local older = redis.call('XREVRANGE', log, '(' .. minId, '-', 'COUNT', 1)[1]
  if older then
    lastRemoved = older[1]
    removed = removed + redis.call('XTRIM', log, 'MINID', minId)
  end
end

if lastRemoved then
  redis.call('HSET', meta, 'trimmed', lastRemoved)
end
return removed
