-- Growth runs (benches/load/growth.sh): encrypt with a key drawn uniformly at
-- random per request among LOAD_KEYS keys named <LOAD_KEY_PREFIX><0..LOAD_KEYS-1>.
-- LOAD_KEYS=1 is the hot-key run: the same script (same client-side cost per
-- request), always key <prefix>0.
--   LOAD_TOKEN       X-Vault-Token
--   LOAD_BODY_FILE   the encrypt body (JSON)
--   LOAD_KEYS        how many keys to draw from (>= 1)
--   LOAD_KEY_PREFIX  key name prefix (default "k")
--   LOAD_MOUNT       transit mount path (default "transit")
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local n, base, headers, body

function init(args)
  n = tonumber(os.getenv("LOAD_KEYS") or "1")
  assert(n and n >= 1, "LOAD_KEYS must be a number >= 1")
  local prefix = os.getenv("LOAD_KEY_PREFIX") or "k"
  local mount = os.getenv("LOAD_MOUNT") or "transit"
  base = "/v1/" .. mount .. "/encrypt/" .. prefix
  headers = { ["Content-Type"] = "application/json", ["X-Vault-Token"] = os.getenv("LOAD_TOKEN") }
  body = load_read_file(os.getenv("LOAD_BODY_FILE"))
  math.randomseed(os.time() * 1000 + (tonumber(thread_id) or 0) * 7919)
end

function request()
  return wrk.format("POST", base .. math.random(0, n - 1), headers, body)
end
