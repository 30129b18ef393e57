--[[
  Lists commands newest first (ties: the later inserted first), filtered.
  KEYS[1] index of all commands (score createdAt, member '<seq>:<id>')
  ARGV[1] key prefix of the database, ARGV[2] min score ('-inf' or since),
  ARGV[3] max score ('+inf' or '(until'), ARGV[4] limit, ARGV[5] address ('' any),
  ARGV[6..] states (none: any)
  Returns the commands as flat lists.
]]
local base, address, limit = ARGV[1], ARGV[5], tonumber(ARGV[4])
local states = nil
if #ARGV > 5 then
  states = {}
  for i = 6, #ARGV do states[ARGV[i]] = true end
end
local PAGE = 200
local out, offset = {}, 0
while #out < limit do
  local members = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[2], 'LIMIT', offset, PAGE)
  for _, m in ipairs(members) do
    local cmd = base .. 'cmd:' .. string.match(m, '^%d+:(.*)$')
    local f = redis.call('HMGET', cmd, 'address', 'state')
    if (address == '' or f[1] == address) and (not states or states[f[2]]) then
      out[#out + 1] = redis.call('HGETALL', cmd)
      if #out >= limit then break end
    end
  end
  if #members < PAGE then break end
  offset = offset + PAGE
end
return out
