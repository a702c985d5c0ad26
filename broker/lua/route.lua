-- route.lua: the durable side of routing decisions, one call per batch of operations.
-- Each operation updates a conversation's RoutingRecord and appends its routing event, so the
-- hash P..'routing' and the stream never disagree about who has a conversation.
--
-- KEYS[1] = the tenant's stream key. ARGV = prefix, now_ms, stream maxlen, n, then per op:
--   conversation id, action, record, agent, flags, partial event, reply key, outbox id, outbox entry
--   action: 'set' (record = packed RoutingRecord), 'del', 'close' (also closes the conversation:
--           the customer's next message on that channel opens a new one), 'reopen' (undoes a
--           close a customer message raced, with a new record), '' (no state change)
--   agent:  non-empty = the customer's last agent now (sticky routing)
--   flags:  'h' = return the customer's recent events; 'r' = the event joins the recent list
--   partial: StreamEvent without seq ('' = no event)
--   reply key: non-empty = an agent's reply id; an op whose key was seen (7 days) does nothing and
--           returns what the first one stored ("seq outbound_id")
--   outbox id/entry: a reply on its way to an adapter (P..'outbox' hash): entry '' removes it
-- Returns per op { seq (0 = no event), { recent event bytes, oldest first }, first reply or '' }.

local P, now, maxlen, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local stream = KEYS[1]
local seq = seq_load(P, stream)
local out = {}
local i = 5
local function apply(conv, action, record, agent, flags, partial, rkey, okey, oval)
  if rkey ~= '' then
    local first = redis.call('GET', P .. 'reply:' .. rkey)
    if first then return { 0, {}, first } end
  end
  if action == 'set' then
    -- Never bring back the record of a closed conversation (a write retried out of order).
    if redis.call('HGET', P .. 'conv:' .. conv, 'state') ~= 'closed' then
      redis.call('HSET', P .. 'routing', conv, record)
    end
  elseif action == 'del' then
    redis.call('HDEL', P .. 'routing', conv)
  elseif action == 'reopen' then
    -- A customer message raced the close: the conversation is open again and routed.
    local h = redis.call('HMGET', P .. 'conv:' .. conv, 'customer', 'channel')
    if h[1] then
      redis.call('HSET', P .. 'conv:' .. conv, 'state', 'open')
      redis.call('HSETNX', P .. 'cus:' .. h[1] .. ':open', h[2], conv)
    end
    redis.call('HSET', P .. 'routing', conv, record)
  elseif action == 'close' then
    redis.call('HDEL', P .. 'routing', conv)
    local h = redis.call('HMGET', P .. 'conv:' .. conv, 'customer', 'channel')
    if h[1] then
      -- Invariant of ingest.lua: cus:<id>:open lists only open conversations.
      if redis.call('HGET', P .. 'cus:' .. h[1] .. ':open', h[2]) == conv then
        redis.call('HDEL', P .. 'cus:' .. h[1] .. ':open', h[2])
      end
      redis.call('HSET', P .. 'conv:' .. conv, 'state', 'closed', 'closed_ms', now)
    end
  end
  -- Only sticky routing and the recent list need the customer: most ops (offers) skip the read.
  local cust = false
  if agent ~= '' or flags ~= '' then cust = redis.call('HGET', P .. 'conv:' .. conv, 'customer') end
  if agent ~= '' and cust then
    redis.call('HSET', P .. 'cus:' .. cust, 'last_agent', agent, 'last_agent_ms', now)
  end
  local s = 0
  if partial ~= '' then
    seq = seq + 1
    s = seq
    xadd(stream, maxlen, seq, fint(1, seq) .. partial)
    if cust and string.find(flags, 'r', 1, true) then recent_push(P, cust, seq) end
  end
  local hist = {}
  if cust and string.find(flags, 'h', 1, true) then
    local seqs = redis.call('LRANGE', P .. 'cus:' .. cust .. ':recent', 0, -1)
    for j = #seqs, 1, -1 do
      local e = redis.call('XRANGE', stream, seqs[j] .. '-0', seqs[j] .. '-0')
      if e[1] then hist[#hist + 1] = e[1][2][2] end
    end
  end
  if okey ~= '' then
    if oval == '' then redis.call('HDEL', P .. 'outbox', okey) else redis.call('HSET', P .. 'outbox', okey, oval) end
  end
  if rkey ~= '' then redis.call('SET', P .. 'reply:' .. rkey, s .. ' ' .. okey, 'EX', 604800) end
  return { s, hist, '' }
end

for _ = 1, n do
  out[#out + 1] = apply(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7], ARGV[i + 8])
  i = i + 9
end
redis.call('SET', P .. 'seq', seq)
return out
