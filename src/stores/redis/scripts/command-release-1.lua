--[[
  Puts every non-final command held by a claimer back to pending (it disconnected).
  KEYS[1] set of ids claimed by the claimer
  ARGV[1] key prefix of the database, ARGV[2] claimer
  Returns how many were released.
]]
local base, claimer = ARGV[1], ARGV[2]
local FINAL = { succeeded = true, failed = true, expired = true, cancelled = true }
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local cmd = base .. 'cmd:' .. id
  local f = redis.call('HMGET', cmd, 'state', 'claimedBy')
  if f[2] == claimer and f[1] and not FINAL[f[1]] then
    redis.call('HSET', cmd, 'state', 'pending')
    redis.call('HDEL', cmd, 'claimedBy', 'leaseUntil')
    n = n + 1
  end
end
redis.call('DEL', KEYS[1])
return n
