--[[
  Records a final outcome unless the command is already final (the first outcome wins).
  KEYS[1] command hash, KEYS[2] deadlines
  ARGV[1] key prefix of the database, ARGV[2] '1' when a claimer answers ('0': the server),
  ARGV[3] claimer, ARGV[4] final state, ARGV[5] result or error JSON ('' for none), ARGV[6] now
  Returns {} when not found, else { changed (0|1), command as a flat list }.
]]
local cmd, deadlines = KEYS[1], KEYS[2]
local base = ARGV[1]
local FINAL = { succeeded = true, failed = true, expired = true, cancelled = true }

local f = redis.call('HMGET', cmd, 'state', 'claimedBy', 'address', 'id', 'seq')
local state, holder, address, id = f[1], f[2], f[3], f[4]
if not state then
  return {}
end
if FINAL[state] or (ARGV[2] == '1' and holder ~= ARGV[3]) then
  return { 0, redis.call('HGETALL', cmd) }
end

redis.call('HSET', cmd, 'state', ARGV[4], 'finishedAt', ARGV[6])
redis.call('HDEL', cmd, 'claimedBy', 'leaseUntil', 'result', 'error')
if ARGV[4] == 'succeeded' then
  redis.call('HSET', cmd, 'result', ARGV[5])
elseif ARGV[4] == 'failed' then
  redis.call('HSET', cmd, 'error', ARGV[5])
end
redis.call('ZREM', base .. 'open:' .. address, string.format('%016d:%s', f[5], id))
redis.call('ZREM', deadlines, id)
if holder then
  redis.call('SREM', base .. 'claims:' .. holder, id)
end
return { 1, redis.call('HGETALL', cmd) }
