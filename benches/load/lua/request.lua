-- One fixed request, repeated: method, token and body from the environment
-- (see common.lua); the path is the one in wrk's URL.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = os.getenv("LOAD_METHOD") or "POST"
wrk.headers["X-Vault-Token"] = os.getenv("LOAD_TOKEN")
local body_file = os.getenv("LOAD_BODY_FILE")
if body_file and body_file ~= "" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = load_read_file(body_file)
end
