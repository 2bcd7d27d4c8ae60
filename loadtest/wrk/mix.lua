-- Playlist + segment mix, the way a crowd of VOD players loads an edge: one playlist request for
-- every N segment requests, segments spread over the rendition.
-- Usage: wrk -t2 -c64 -d30s -s loadtest/wrk/mix.lua http://127.0.0.1:8080 -- \
--          /v/VIDEO/1/720p SEGMENTS [SEGMENTS_PER_PLAYLIST]
--   /v/VIDEO/1/720p        rendition directory (index.m3u8, seg0.m4s … live under it)
--   SEGMENTS               how many segments the rendition has (seg0 … seg{N-1})
--   SEGMENTS_PER_PLAYLIST  default 10

local dir, segments, ratio
local counter = 0

function init(args)
  dir = args[1] or "/v/demo/1/720p"
  segments = tonumber(args[2] or "10")
  ratio = tonumber(args[3] or "10")
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
end

function request()
  counter = counter + 1
  if counter % (ratio + 1) == 0 then
    return wrk.format("GET", dir .. "/index.m3u8")
  end
  return wrk.format("GET", dir .. "/seg" .. math.random(0, segments - 1) .. ".m4s")
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
