--[[
  Marks `expired` every non-final command whose deadline is <= now.
  KEYS[1] deadlines (only non-final commands are in it)
  ARGV[1] key prefix of the database, ARGV[2] now
  Returns the expired commands as flat lists.
]]
local deadlines, base = KEYS[1], ARGV[1]
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', ARGV[2])) do
  local cmd = base .. 'cmd:' .. id
  local f = redis.call('HMGET', cmd, 'claimedBy', 'address', 'seq')
  redis.call('ZREM', deadlines, id)
  if f[2] then
    redis.call('HSET', cmd, 'state', 'expired', 'finishedAt', ARGV[2])
    redis.call('HDEL', cmd, 'claimedBy', 'leaseUntil')
    redis.call('ZREM', base .. 'open:' .. f[2], string.format('%016d:%s', f[3], id))
    if f[1] then
      redis.call('SREM', base .. 'claims:' .. f[1], id)
    end
    out[#out + 1] = redis.call('HGETALL', cmd)
  end
end
return out
