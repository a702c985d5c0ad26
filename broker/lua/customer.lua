-- customer.lua: one consistent read of a customer by identity (for omnictl customer).
-- KEYS[1] = the tenant's stream key (routing only); ARGV = prefix, normalized identity.
-- Returns {} when unknown, else { customer, {identities...}, {{conv, channel, state, opened_ms}...} }.
local P, id = ARGV[1], ARGV[2]
local c = redis.call('GET', P .. 'ident:' .. id)
if not c then return {} end
local ids = redis.call('SMEMBERS', P .. 'cus:' .. c .. ':ids')
table.sort(ids)
local convs = {}
-- The newest 500 conversations: a long-lived customer's history is the stream's job.
for _, v in ipairs(redis.call('ZRANGE', P .. 'cus:' .. c .. ':convs', -500, -1)) do
  local h = redis.call('HMGET', P .. 'conv:' .. v, 'channel', 'state', 'opened_ms')
  convs[#convs + 1] = { v, h[1] or '', h[2] or '', h[3] or '0' }
end
return { c, ids, convs }
