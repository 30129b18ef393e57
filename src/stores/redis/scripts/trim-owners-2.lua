--[[
  Store.trimOwners: deletes every claim lapsed at `now`.
  KEYS[1] owners hash (key -> owner), KEYS[2] expiry sorted set (key by expiry)
  ARGV[1] now (ms), ARGV[2] prefix of every owner's claims set (same database, same hash slot)
  Returns how many claims were deleted.
]]
local owners, expiry = KEYS[1], KEYS[2]
local now, ownedPrefix = tonumber(ARGV[1]), ARGV[2]
local CHUNK = 1000
local removed = 0

local function forget(k)
  local owner = redis.call('HGET', owners, k)
  if owner then redis.call('ZREM', ownedPrefix .. owner, k) end
  redis.call('HDEL', owners, k)
  redis.call('ZREM', expiry, k)
  removed = removed + 1
end

while true do
  local page = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, CHUNK)
  if #page == 0 then break end
  for _, k in ipairs(page) do forget(k) end
end
-- Claims recorded before claims had an expiry have none: they have lapsed too.
if redis.call('HLEN', owners) > redis.call('ZCARD', expiry) then
  for _, k in ipairs(redis.call('HKEYS', owners)) do
    if not redis.call('ZSCORE', expiry, k) then forget(k) end
  end
end
return removed
