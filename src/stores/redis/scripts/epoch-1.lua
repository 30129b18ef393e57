--[[
  The store's epoch: kept if recorded, else ARGV[1] becomes it (first opener wins; a
  wiped Redis gets a new one, so old cursors are seen as foreign).
  KEYS[1] epoch key. Returns the recorded epoch.
]]
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
