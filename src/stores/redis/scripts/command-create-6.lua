--[[
  Stores a new pending command, unless its idempotency key was already used for the
  address (or the id exists: a resent call), in which case the stored one is returned.
  KEYS[1] command hash, KEYS[2] idempotency hash, KEYS[3] index of all commands,
  KEYS[4] open commands of the address, KEYS[5] deadlines, KEYS[6] meta hash
  (both zsets are scored by createdAt, members '<seq>:<id>' so that ties keep insertion order)
  ARGV[1] key prefix of the database, ARGV[2] id, ARGV[3] address, ARGV[4] method,
  ARGV[5] args, ARGV[6] deadline or '', ARGV[7] idempotency field or '', ARGV[8] idempotency key,
  ARGV[9] now
  Returns { created (0|1), command hash as a flat list }.
]]
local cmd, idem, all, open, deadlines, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local base, id = ARGV[1], ARGV[2]

if ARGV[7] ~= '' then
  local existing = redis.call('HGET', idem, ARGV[7])
  if existing then
    return { 0, redis.call('HGETALL', base .. 'cmd:' .. existing) }
  end
end
if redis.call('EXISTS', cmd) == 1 then
  return { 0, redis.call('HGETALL', cmd) }
end

-- Insertion order breaks ties between equal timestamps, as in the memory reference.
local seq = redis.call('HINCRBY', meta, 'cmdseq', 1)
redis.call('HSET', cmd, 'id', id, 'address', ARGV[3], 'method', ARGV[4], 'args', ARGV[5],
  'state', 'pending', 'attempts', 0, 'createdAt', ARGV[9], 'seq', seq)
if ARGV[6] ~= '' then
  redis.call('HSET', cmd, 'deadline', ARGV[6])
  redis.call('ZADD', deadlines, ARGV[6], id)
end
if ARGV[7] ~= '' then
  redis.call('HSET', cmd, 'idempotencyKey', ARGV[8])
  redis.call('HSET', idem, ARGV[7], id)
end
local member = string.format('%016d:%s', seq, id)
redis.call('ZADD', all, ARGV[9], member)
redis.call('ZADD', open, ARGV[9], member)
return { 1, redis.call('HGETALL', cmd) }
