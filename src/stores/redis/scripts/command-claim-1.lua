--[[
  Takes up to `limit` commands of one address for a claimer, oldest first: pending ones
  and delivered/running ones whose lease ran out.
  KEYS[1] open commands of the address (score createdAt, member '<seq>:<id>')
  ARGV[1] key prefix of the database, ARGV[2] claimer, ARGV[3] limit, ARGV[4] now,
  ARGV[5] lease in ms
  Returns the claimed commands as flat lists.
]]
local base, claimer = ARGV[1], ARGV[2]
local limit, now, leaseMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
if limit <= 0 then return out end

for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local id = string.match(member, '^%d+:(.*)$')
  local cmd = base .. 'cmd:' .. id
  local f = redis.call('HMGET', cmd, 'state', 'leaseUntil', 'claimedBy')
  local state, lease, holder = f[1], f[2], f[3]
  local expired = not lease or tonumber(lease) <= now
  if state == 'pending' or ((state == 'delivered' or state == 'running') and expired) then
    if state == 'pending' then
      redis.call('HSET', cmd, 'state', 'delivered')
    end
    redis.call('HINCRBY', cmd, 'attempts', 1)
    redis.call('HSET', cmd, 'claimedBy', claimer, 'leaseUntil', string.format('%d', now + leaseMs),
      'deliveredAt', ARGV[4])
    if holder and holder ~= claimer then
      redis.call('SREM', base .. 'claims:' .. holder, id)
    end
    redis.call('SADD', base .. 'claims:' .. claimer, id)
    out[#out + 1] = redis.call('HGETALL', cmd)
    if #out >= limit then break end
  end
end
return out
