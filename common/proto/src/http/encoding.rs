//! Content negotiation of `Accept-Encoding` (RFC 9110 §12.5.3), reduced to the one question the
//! edge asks: may this response be gzip-encoded?

/// Whether `Accept-Encoding` allows `gzip`: listed (or `x-gzip`, or `*`) with a non-zero
/// quality, and not excluded by `gzip;q=0`. No header means identity only (we do not take the
/// §12.5.3 "any coding is acceptable" reading: players that can decode gzip always say so).
pub fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else {
        return false;
    };
    let mut star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
            })
            .next()
            .is_none_or(qvalue_positive);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q;
        }
        if coding == "*" {
            star = Some(q);
        }
    }
    star.unwrap_or(false)
}

/// `q=0`, `q=0.0`, `q=0.000` are zero; anything else that parses is positive; garbage is zero.
fn qvalue_positive(q: &str) -> bool {
    q.parse::<f32>().is_ok_and(|v| v > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        for (h, want) in [
            (Some("gzip"), true),
            (Some("gzip, deflate, br"), true),
            (Some("br;q=1.0, GZIP;q=0.5"), true),
            (Some("x-gzip"), true),
            (Some("*"), true),
            (Some("gzip;q=0"), false),
            (Some("gzip;q=0.000, *"), false),
            (Some("*;q=0"), false),
            (Some("br, deflate"), false),
            (Some("identity"), false),
            (Some(""), false),
            (Some("gzip;q=nope"), false),
            (None, false),
        ] {
            assert_eq!(accepts_gzip(h), want, "{h:?}");
        }
    }
}
