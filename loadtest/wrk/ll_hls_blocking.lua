-- LL-HLS blocking playlist reloads: every connection behaves like a low-latency player that asks
-- for the next part with _HLS_msn/_HLS_part and, once answered, asks for the one after.
-- Usage: wrk -t2 -c200 -d30s --timeout 10s -s loadtest/wrk/ll_hls_blocking.lua \
--          http://127.0.0.1:8080 -- /v/LIVE/1/720p/index.m3u8 START_MSN PARTS_PER_SEGMENT
-- START_MSN is a media sequence number near the live edge (read it from the playlist first);
-- PARTS_PER_SEGMENT is segment duration / part target (e.g. 2 s / 0.5 s = 4).

local path, parts_per_segment
local msn, part

function init(args)
  path = args[1] or "/v/live/1/720p/index.m3u8"
  msn = tonumber(args[2] or "0")
  parts_per_segment = tonumber(args[3] or "4")
  part = 0
end

function request()
  return wrk.format("GET", string.format("%s?_HLS_msn=%d&_HLS_part=%d", path, msn, part))
end

function response(status, headers, body)
  if status == 200 then
    part = part + 1
    if part >= parts_per_segment then
      part = 0
      msn = msn + 1
    end
  elseif status == 400 then
    -- Too far ahead or behind the window: jump to the live edge reported in the playlist.
    local last = body and body:match("#EXT%-X%-MEDIA%-SEQUENCE:(%d+)")
    if last then msn = tonumber(last); part = 0 end
  else
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
