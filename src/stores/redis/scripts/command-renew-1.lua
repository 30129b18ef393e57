--[[
  Extends the lease of every non-final command held by a claimer.
  KEYS[1] set of ids claimed by the claimer
  ARGV[1] key prefix of the database, ARGV[2] claimer, ARGV[3] now, ARGV[4] lease in ms
  Returns how many were extended.
]]
local base, claimer = ARGV[1], ARGV[2]
local leaseUntil = string.format('%d', tonumber(ARGV[3]) + tonumber(ARGV[4]))
local FINAL = { succeeded = true, failed = true, expired = true, cancelled = true }
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local cmd = base .. 'cmd:' .. id
  local f = redis.call('HMGET', cmd, 'state', 'claimedBy')
  if f[2] == claimer and f[1] and not FINAL[f[1]] then
    redis.call('HSET', cmd, 'leaseUntil', leaseUntil)
    n = n + 1
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return n
