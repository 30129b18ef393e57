--[[
  Store.claimOwner: renews the caller's live claim, keeps another owner's, takes an absent
  or lapsed one, then drops the caller's lapsed claims and its least recently renewed ones
  past the cap.
  KEYS[1] owners hash (key -> owner), KEYS[2] expiry sorted set (key by expiry),
  KEYS[3] the caller's claims (key by expiry)
  ARGV[1] key, ARGV[2] owner, ARGV[3] now (ms), ARGV[4] ttl (ms), ARGV[5] most claims per
  owner, ARGV[6] prefix of every owner's claims set (same database, same hash slot)
  Returns the owner of the live claim.
]]
local owners, expiry, mine = KEYS[1], KEYS[2], KEYS[3]
local key, owner, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local expiresAt, max, ownedPrefix = now + tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

local current = redis.call('HGET', owners, key)
if current then
  -- A claim without an expiry predates expiry: it has lapsed.
  local liveUntil = tonumber(redis.call('ZSCORE', expiry, key) or '0')
  if liveUntil > now then
    if current ~= owner then return current end
    redis.call('ZADD', expiry, expiresAt, key)
    redis.call('ZADD', mine, expiresAt, key)
    return owner
  end
  redis.call('ZREM', ownedPrefix .. current, key)
end
redis.call('HSET', owners, key, owner)
redis.call('ZADD', expiry, expiresAt, key)
redis.call('ZADD', mine, expiresAt, key)

local function forget(k)
  redis.call('HDEL', owners, k)
  redis.call('ZREM', expiry, k)
  redis.call('ZREM', mine, k)
end
for _, k in ipairs(redis.call('ZRANGEBYSCORE', mine, '-inf', now)) do forget(k) end
local extra = redis.call('ZCARD', mine) - max
if extra > 0 then
  -- Least recently renewed first; the new claim has the latest expiry and stays.
  for _, k in ipairs(redis.call('ZRANGE', mine, 0, extra)) do
    if extra > 0 and k ~= key then
      forget(k)
      extra = extra - 1
    end
  end
end
return owner
