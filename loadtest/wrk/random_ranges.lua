-- Random single byte-range requests over one object (players seeking in byte-range playlists,
-- download managers). Usage:
--   wrk -t2 -c64 -d30s -s loadtest/wrk/random_ranges.lua http://127.0.0.1:8080 -- \
--       /v/VIDEO/1/720p/seg3.m4s OBJECT_SIZE [MAX_RANGE]

local path, size, max_range

function init(args)
  path = args[1] or "/v/demo/1/720p/seg0.m4s"
  size = tonumber(args[2] or "1000000")
  max_range = tonumber(args[3] or "65536")
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
end

function request()
  local len = math.random(1, math.min(max_range, size))
  local first = math.random(0, size - len)
  return wrk.format("GET", path, { ["Range"] = string.format("bytes=%d-%d", first, first + len - 1) })
end

function response(status, headers, body)
  if status ~= 206 then
    io.stderr:write("expected 206, got " .. status .. "\n")
  end
end
