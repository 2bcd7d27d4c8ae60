//! The bits of URL handling a player needs: split `http://host:port/path?q` into a socket
//! address and a request target, resolve playlist-relative URIs (RFC 3986 §5.2, paths only:
//! every request goes to the same origin), and read `EXT-X-PROGRAM-DATE-TIME` values.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

/// `http://host[:port]/path` → (address, `/path`).
pub fn split_http_url(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported: {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("resolve {hostport}"))?
        .next()
        .with_context(|| format!("{hostport} has no address"))?;
    Ok((addr, path.to_string()))
}

/// Resolve `reference` against the request target `base` (both paths on one origin).
pub fn resolve(base: &str, reference: &str) -> String {
    if let Some(rest) = reference
        .strip_prefix("http://")
        .or_else(|| reference.strip_prefix("https://"))
    {
        return rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string());
    }
    if reference.starts_with('/') {
        return normalize(reference);
    }
    let base_path = base.split('?').next().unwrap_or(base);
    let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
    normalize(&format!("{dir}{reference}"))
}

/// Remove `.` and `..` segments (the query is left alone).
fn normalize(path: &str) -> String {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = p.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        // A trailing "." or ".." still names a directory.
        if i + 1 == segments.len() && (*seg == "." || *seg == "..") {
            out.push("");
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if let Some(q) = q {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` (RFC 3339, what PROGRAM-DATE-TIME carries).
pub fn parse_date_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        let digits = &frac[..frac.len().min(9)];
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz.get(1..3)?.parse::<i64>().ok()? * 3600
                + tz.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let t = Duration::from_secs(u64::try_from(secs).ok()?) + Duration::from_nanos(nanos as u64);
    Some(UNIX_EPOCH + t)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let (a, p) = split_http_url("http://127.0.0.1:8080/v/x/master.m3u8").expect("url");
        assert_eq!(a, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(p, "/v/x/master.m3u8");
        assert!(split_http_url("https://x/").is_err());
    }

    #[test]
    fn resolves_relative_uris() {
        let base = "/v/x/master.m3u8?token=1";
        assert_eq!(resolve(base, "1/720p/index.m3u8"), "/v/x/1/720p/index.m3u8");
        assert_eq!(
            resolve("/v/x/1/720p/index.m3u8", "seg3.m4s"),
            "/v/x/1/720p/seg3.m4s"
        );
        assert_eq!(
            resolve("/v/x/1/720p/index.m3u8", "../360p/index.m3u8"),
            "/v/x/1/360p/index.m3u8"
        );
        assert_eq!(resolve(base, "/abs/p.m3u8"), "/abs/p.m3u8");
        assert_eq!(resolve(base, "http://other:1/y/z.m4s?q"), "/y/z.m4s?q");
    }

    #[test]
    fn parses_program_date_time() {
        let t = parse_date_time("1970-01-02T00:00:01.500Z").expect("date");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).expect("after epoch"),
            Duration::from_millis(86_401_500)
        );
        let t2 = parse_date_time("1970-01-02T01:00:01.500+01:00").expect("date");
        assert_eq!(t, t2);
        let known = parse_date_time("2026-11-27T08:00:00Z").expect("date");
        assert_eq!(
            known.duration_since(UNIX_EPOCH).expect("after").as_secs(),
            1_795_766_400
        );
        for bad in [
            "",
            "2026-11-27",
            "2026-13-01T00:00:00Z",
            "2026-11-27T00:00:00",
            "2026-11-27T00:00:00.Z",
        ] {
            assert!(parse_date_time(bad).is_none(), "{bad}");
        }
    }
}
