--[[
  Appends a batch to a database's log in one atomic step.
  KEYS[1] log stream, KEYS[2] meta hash, KEYS[3] stream of database names
  ARGV[1] database name, then channel, type, payload for each entry
  Returns the stream ids given to the entries, in order.

  Ids are computed here rather than with XADD '*' so that the sequence part never
  exceeds 6 digits (message ids are fixed-width): if the clock stalls or goes back,
  Redis would keep counting in the last millisecond without bound.
]]
local log, meta, dbs = KEYS[1], KEYS[2], KEYS[3]
local MAX_SEQ = 999999

local created = redis.call('EXISTS', log) == 0
local lastMs, lastSeq = -1, -1
local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
-- An emptied stream still has its newest id recorded as the retention watermark.
local last = (top and top[1]) or redis.call('HGET', meta, 'trimmed')
if last then
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  lastMs, lastSeq = tonumber(ms), tonumber(seq)
end

local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = 0
if ms <= lastMs then
  ms, seq = lastMs, lastSeq + 1
end

local ids = {}
for i = 2, #ARGV, 3 do
  if seq > MAX_SEQ then
    ms, seq = ms + 1, 0
  end
  local id = string.format('%d-%d', ms, seq)
  redis.call('XADD', log, id, 'c', ARGV[i], 't', ARGV[i + 1], 'p', ARGV[i + 2])
  ids[#ids + 1] = id
  seq = seq + 1
end

-- Announce a new database so that every instance starts watching its stream.
if created then
  redis.call('XADD', dbs, '*', 'db', ARGV[1])
end
return ids
