-- One login, repeated: the body from LOAD_BODY_FILE, no token (see
-- benches/load/lua/common.lua for the report line); the path is wrk's URL.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = load_read_file(os.getenv("LOAD_BODY_FILE"))
