--[[
  delivered -> running, only by the command's claimer.
  KEYS[1] command hash; ARGV[1] claimer, ARGV[2] now
  Returns the command as a flat list, or an empty list when refused.
]]
local cmd = KEYS[1]
local f = redis.call('HMGET', cmd, 'state', 'claimedBy', 'startedAt')
local state, holder, startedAt = f[1], f[2], f[3]
if holder ~= ARGV[1] or (state ~= 'delivered' and state ~= 'running') then
  return {}
end
redis.call('HSET', cmd, 'state', 'running')
if not startedAt then
  redis.call('HSET', cmd, 'startedAt', ARGV[2])
end
return redis.call('HGETALL', cmd)
