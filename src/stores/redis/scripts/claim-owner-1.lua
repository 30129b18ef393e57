--[[
  First writer wins: records ARGV[2] as the owner of ARGV[1] unless one is recorded.
  KEYS[1] owners hash. Returns the recorded owner.
]]
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
