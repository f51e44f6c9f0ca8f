-- The mixed workload: per request, 45% encrypt 64 B, 45% decrypt 64 B (a
-- ciphertext made by THIS server beforehand) and 10% key reads
-- (GET transit/keys/bench). The three requests are formatted once per thread;
-- request() only draws a number. Per-kind counts are reported by done().
--   LOAD_ENC_BODY / LOAD_DEC_BODY  files with the encrypt and decrypt bodies
--   LOAD_MOUNT                     transit mount path (default "transit")
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local enc, dec, rd
n_encrypt, n_decrypt, n_read = 0, 0, 0

function init(args)
  local token = os.getenv("LOAD_TOKEN")
  local mount = os.getenv("LOAD_MOUNT") or "transit"
  local post = { ["Content-Type"] = "application/json", ["X-Vault-Token"] = token }
  local get = { ["X-Vault-Token"] = token }
  enc = wrk.format("POST", "/v1/" .. mount .. "/encrypt/bench", post, load_read_file(os.getenv("LOAD_ENC_BODY")))
  dec = wrk.format("POST", "/v1/" .. mount .. "/decrypt/bench", post, load_read_file(os.getenv("LOAD_DEC_BODY")))
  rd = wrk.format("GET", "/v1/" .. mount .. "/keys/bench", get, nil)
  math.randomseed(os.time() * 1000 + (tonumber(thread_id) or 0))
end

function request()
  local r = math.random(100)
  if r <= 45 then
    n_encrypt = n_encrypt + 1
    return enc
  elseif r <= 90 then
    n_decrypt = n_decrypt + 1
    return dec
  else
    n_read = n_read + 1
    return rd
  end
end
