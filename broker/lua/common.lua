-- common.lua: prepended by embed.py to every other script (Redis scripts cannot share code).
-- Protobuf encoding of the few field shapes a StreamEvent header needs (numbers < 2^53), and
-- the stream's seq counter and append.
local char = string.char
local function varint(v)
  if v < 128 then return char(v) end -- every tag and most lengths: no table, no concat
  local out = {}
  repeat
    local b = v % 128
    v = (v - b) / 128
    if v > 0 then b = b + 128 end
    out[#out + 1] = char(b)
  until v == 0
  return table.concat(out)
end
local function fint(field, v)
  if v == 0 then return '' end
  return varint(field * 8) .. varint(v)
end
local function fbytes(field, s) -- always present, even empty (oneof members)
  return varint(field * 8 + 2) .. varint(#s) .. s
end
local function fstr(field, s)
  if not s or s == '' then return '' end
  return fbytes(field, s)
end

-- seq lives in a local for the whole call: one GET and one SET instead of an INCR per event.
-- It never starts behind the stream's last id (a lost or evicted seq key would otherwise make
-- every later XADD fail).
local function seq_load(P, stream)
  local seq = tonumber(redis.call('GET', P .. 'seq') or '0')
  local tip = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if tip[1] then
    local last = tonumber(string.match(tip[1][1], '^(%d+)'))
    if last > seq then seq = last end
  end
  return seq
end
local function xadd(stream, maxlen, seq, ev)
  if maxlen > 0 then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, seq .. '-0', 'e', ev)
  else
    redis.call('XADD', stream, seq .. '-0', 'e', ev)
  end
end
-- The customer's recent events (message and agent_message seqs, newest first) that an agent
-- gets with an assignment.
local RECENT = 20
local function recent_push(P, cust, seq)
  redis.call('LPUSH', P .. 'cus:' .. cust .. ':recent', seq)
  redis.call('LTRIM', P .. 'cus:' .. cust .. ':recent', 0, RECENT - 1)
end

