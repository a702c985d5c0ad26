-- ingest.lua: the whole durable side of accepting a batch of inbound messages, atomically.
-- Idempotency, identity resolution and merge, conversation threading, seq allocation and XADD
-- of protobuf StreamEvents happen in one script call, so racing brokers can never split a customer.
--
-- KEYS[1] = the tenant's stream key (its hash tag routes the call on a Redis Cluster).
-- ARGV = prefix, tenant, now_ms, idempotency window (s), stream maxlen (0 = unlimited),
--        thread window (s), n,
--        then per message: channel name, channel number, provider message id, channel account,
--        n_ids, ids... (linkable identities, sender first), n_refs, refs... (thread keys in
--        priority order; "c<id>" names a conversation directly), n_reg, reg... (thread keys this
--        message makes point at its conversation), partial StreamEvent (time, tenant, channel,
--        message) as protobuf bytes, routing stub (packed Queued: queue, category, rule,
--        priority, provider, reply_to, subject, trigger id, account; empty = not routed).
-- Returns { results, events }: results = per message {duplicate(0/1), customer, conversation, seq};
-- events = {seq, channel name, kind, bytes} for the customer_merged / conversation_opened / queued events
-- the script made up itself, and {0, channel, 'routing_record', record} for duplicates (not an event). A message event is seq, customer and conversation prepended to the
-- caller's partial bytes, so the caller rebuilds it without Redis sending it back.
-- A conversation that opens (or reopens) with a routing stub gets its RoutingRecord in the hash
-- P..'routing' and a `queued` event in the same call: no conversation exists unrouted.

local P, tenant = ARGV[1], ARGV[2]
local now, window, maxlen = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local thread_ttl, n = tonumber(ARGV[6]), tonumber(ARGV[7])
local stream = KEYS[1]
local seq = seq_load(P, stream)

local events = {}
local function append(ch, kind, cust, conv, body)
  seq = seq + 1
  local ev = fint(1, seq) .. fstr(4, cust) .. fstr(5, conv) .. body
  xadd(stream, maxlen, seq, ev)
  if kind ~= 'message' then events[#events + 1] = { seq, ch, kind, ev } end
  return seq
end
local function common(chnum)
  return fint(2, now) .. fstr(3, tenant) .. fint(6, chnum)
end

local function cust_num(c) return tonumber(string.sub(c, 5)) or 0 end
local function by_age(a, b) return cust_num(a) < cust_num(b) end

-- Fold `gone` into `keep`: identities, conversations and open-conversation slots move over.
local function merge(keep, gone, ch, chnum)
  local ids = redis.call('SMEMBERS', P .. 'cus:' .. gone .. ':ids')
  table.sort(ids)
  for _, id in ipairs(ids) do
    redis.call('SET', P .. 'ident:' .. id, keep)
    redis.call('SADD', P .. 'cus:' .. keep .. ':ids', id)
  end
  local convs = redis.call('ZRANGE', P .. 'cus:' .. gone .. ':convs', 0, -1, 'WITHSCORES')
  local moved = {}
  for j = 1, #convs, 2 do
    redis.call('ZADD', P .. 'cus:' .. keep .. ':convs', convs[j + 1], convs[j])
    redis.call('HSET', P .. 'conv:' .. convs[j], 'customer', keep)
    moved[#moved + 1] = convs[j]
  end
  local open = redis.call('HGETALL', P .. 'cus:' .. gone .. ':open')
  for j = 1, #open, 2 do
    redis.call('HSETNX', P .. 'cus:' .. keep .. ':open', open[j], open[j + 1])
  end
  local recent = redis.call('LRANGE', P .. 'cus:' .. keep .. ':recent', 0, -1)
  for _, s in ipairs(redis.call('LRANGE', P .. 'cus:' .. gone .. ':recent', 0, -1)) do recent[#recent + 1] = s end
  if #recent > 0 then
    table.sort(recent, function(a, b) return tonumber(a) > tonumber(b) end)
    redis.call('DEL', P .. 'cus:' .. keep .. ':recent')
    for j = math.min(#recent, RECENT), 1, -1 do redis.call('LPUSH', P .. 'cus:' .. keep .. ':recent', recent[j]) end
  end
  redis.call('DEL', P .. 'cus:' .. gone .. ':ids', P .. 'cus:' .. gone .. ':convs', P .. 'cus:' .. gone .. ':open',
    P .. 'cus:' .. gone .. ':recent')
  redis.call('HSET', P .. 'cus:' .. gone, 'merged_into', keep, 'merged_ms', now)
  local sub = fstr(1, keep) .. fstr(2, gone)
  for _, id in ipairs(ids) do sub = sub .. fbytes(3, id) end
  for _, c in ipairs(moved) do sub = sub .. fbytes(4, c) end
  append(ch, 'customer_merged', keep, '', common(chnum) .. fbytes(11, sub))
end

local function conv_open(conv)
  return redis.call('HGET', P .. 'conv:' .. conv, 'state') == 'open'
end

local results = {}
local i = 8
for _ = 1, n do
  local ch, chnum, pmid, account = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local nids = tonumber(ARGV[i + 4]); i = i + 5
  local ids = {}
  for k = 1, nids do ids[k] = ARGV[i]; i = i + 1 end
  local nrefs = tonumber(ARGV[i]); i = i + 1
  local refs = {}
  for k = 1, nrefs do refs[k] = ARGV[i]; i = i + 1 end
  local nreg = tonumber(ARGV[i]); i = i + 1
  local regs = {}
  for k = 1, nreg do regs[k] = ARGV[i]; i = i + 1 end
  local partial, route = ARGV[i], ARGV[i + 1]; i = i + 2

  local idem = P .. 'idem:' .. ch .. ':' .. pmid
  local prev = redis.call('GET', idem)
  if prev then
    local c, v, s = string.match(prev, '^(%S+) (%S+) (%d+)$')
    results[#results + 1] = { 1, c, v, tonumber(s) }
    -- The first copy's answer may never have reached the broker: hand back the conversation's
    -- routing record, so a conversation it opened is routed even then (the broker ignores
    -- records of conversations it already has).
    if route ~= '' then
      local rec = redis.call('HGET', P .. 'routing', v)
      if rec then events[#events + 1] = { 0, ch, 'routing_record', rec } end
    end
  else
    -- Which customers do these identities already belong to? The oldest one survives.
    local seen, custs, owned = {}, {}, {}
    for _, id in ipairs(ids) do
      local c = redis.call('GET', P .. 'ident:' .. id)
      if c then owned[id] = true end
      if c and not seen[c] then seen[c] = true; custs[#custs + 1] = c end
    end
    if #custs > 1 then table.sort(custs, by_age) end
    local cust
    if #custs == 0 then
      cust = 'cus_' .. redis.call('INCR', P .. 'next:cus')
      redis.call('HSET', P .. 'cus:' .. cust, 'created_ms', now)
    else
      cust = custs[1]
      for j = 2, #custs do merge(cust, custs[j], ch, chnum) end
    end
    -- Identities that already had an owner point at `cust` now (merge re-pointed them).
    for _, id in ipairs(ids) do
      if not owned[id] then
        redis.call('SET', P .. 'ident:' .. id, cust)
        redis.call('SADD', P .. 'cus:' .. cust .. ':ids', id)
      end
    end

    -- Threading first (In-Reply-To, References right to left, reply tokens), then the
    -- customer's open conversation on this channel, else a new one.
    local conv
    for _, r in ipairs(refs) do
      local v
      if string.sub(r, 1, 1) == 'c' then
        v = string.sub(r, 2)
        if redis.call('EXISTS', P .. 'conv:' .. v) == 0 then v = nil end
      else
        v = redis.call('GET', P .. 'thread:' .. ch .. ':' .. r)
      end
      if v then conv = v; break end
    end
    local opened = false
    if conv and not conv_open(conv) then
      redis.call('HSET', P .. 'conv:' .. conv, 'state', 'open')
      opened = true
    end
    -- Invariant: cus:<id>:open lists only open conversations (closing one must HDEL it), so
    -- the common case costs one HGET.
    if not conv then
      conv = redis.call('HGET', P .. 'cus:' .. cust .. ':open', ch)
    end
    if not conv then
      conv = 'cnv_' .. redis.call('INCR', P .. 'next:cnv')
      redis.call('HSET', P .. 'conv:' .. conv, 'customer', cust, 'channel', ch, 'state', 'open',
        'account', account, 'opened_ms', now)
      redis.call('HSET', P .. 'cus:' .. cust .. ':open', ch, conv)
      redis.call('ZADD', P .. 'cus:' .. cust .. ':convs', now, conv)
      append(ch, 'conversation_opened', cust, conv,
        common(chnum) .. fbytes(12, fstr(1, account) .. fstr(2, pmid)))
      opened = true
    end
    if opened and route ~= '' and redis.call('HEXISTS', P .. 'routing', conv) == 0 then
      -- Queued.enqueued_ms (5) and preferred_agent (11) complete the caller's stub.
      local q = route .. fint(5, now) .. fstr(11, redis.call('HGET', P .. 'cus:' .. cust, 'last_agent'))
      redis.call('HSET', P .. 'routing', conv, fstr(1, conv) .. fstr(2, cust) .. fint(3, chnum) .. fbytes(4, q))
      append(ch, 'queued', cust, conv, common(chnum) .. fbytes(13, q))
    end
    for _, r in ipairs(regs) do
      redis.call('SET', P .. 'thread:' .. ch .. ':' .. r, conv, 'EX', thread_ttl)
    end

    local mseq = append(ch, 'message', cust, conv, partial)
    recent_push(P, cust, mseq)
    redis.call('SET', idem, cust .. ' ' .. conv .. ' ' .. mseq, 'EX', window)
    results[#results + 1] = { 0, cust, conv, mseq }
  end
end
redis.call('SET', P .. 'seq', seq)
return { results, events }
