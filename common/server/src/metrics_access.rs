//! Who may read `/metrics`. Metrics tell an attacker a lot (upload volume, cache sizes, live
//! streams, error rates) and cost a render per scrape, so the default is safe: without a
//! configured key only loopback clients are answered (a Prometheus on the same host, the
//! tests, an SSH tunnel); with a key every client must present it as a bearer token.

use std::net::IpAddr;

use ringcast_proto::secret::{bearer_token, constant_time_eq};

/// Why a `/metrics` request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetricsDenied {
    #[error("metrics need Authorization: Bearer <metrics_key>")]
    KeyRequired,
    #[error("wrong metrics key")]
    WrongKey,
    #[error(
        "metrics are served to loopback clients only; set metrics_key to scrape from elsewhere"
    )]
    NotLoopback,
}

impl MetricsDenied {
    /// 401 asks for credentials; the other two are refusals.
    pub fn status(&self) -> u16 {
        match self {
            MetricsDenied::KeyRequired => 401,
            MetricsDenied::WrongKey | MetricsDenied::NotLoopback => 403,
        }
    }
}

/// The `/metrics` policy of one service (`metrics_key` in its config; empty = loopback only).
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    key: Option<String>,
}

impl MetricsAccess {
    pub fn new(key: &str) -> Self {
        Self {
            key: (!key.is_empty()).then(|| key.to_string()),
        }
    }

    /// Decide a scrape from its `Authorization` header value and the client's address
    /// (`None` when unknown, which counts as not loopback).
    pub fn check(
        &self,
        authorization: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<(), MetricsDenied> {
        match &self.key {
            None if peer.is_some_and(|ip| is_loopback(&ip)) => Ok(()),
            None => Err(MetricsDenied::NotLoopback),
            Some(key) => {
                let given = authorization
                    .and_then(bearer_token)
                    .ok_or(MetricsDenied::KeyRequired)?;
                if constant_time_eq(given.as_bytes(), key.as_bytes()) {
                    Ok(())
                } else {
                    Err(MetricsDenied::WrongKey)
                }
            }
        }
    }
}

/// Loopback, including an IPv4 loopback address mapped into IPv6 (`::ffff:127.0.0.1`, what a
/// dual-stack listener reports).
fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn without_a_key_only_loopback_clients_are_answered() {
        let open = MetricsAccess::new("");
        for local in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(open.check(None, ip(local)), Ok(()), "{local}");
        }
        for remote in ["10.0.0.5", "192.168.1.2", "::ffff:10.0.0.5", "2001:db8::1"] {
            assert_eq!(
                open.check(Some("Bearer x"), ip(remote)),
                Err(MetricsDenied::NotLoopback),
                "{remote}"
            );
        }
        assert_eq!(open.check(None, None), Err(MetricsDenied::NotLoopback));
    }

    #[test]
    fn with_a_key_everyone_needs_it() {
        let keyed = MetricsAccess::new("metrics-key-0123456789");
        assert_eq!(
            keyed.check(None, ip("127.0.0.1")),
            Err(MetricsDenied::KeyRequired)
        );
        assert_eq!(
            keyed.check(Some("Basic abc"), ip("10.0.0.1")),
            Err(MetricsDenied::KeyRequired)
        );
        assert_eq!(
            keyed.check(Some("Bearer nope"), ip("10.0.0.1")),
            Err(MetricsDenied::WrongKey)
        );
        assert_eq!(
            keyed.check(Some("Bearer metrics-key-0123456789"), ip("10.0.0.1")),
            Ok(())
        );
        assert_eq!(MetricsDenied::KeyRequired.status(), 401);
        assert_eq!(MetricsDenied::NotLoopback.status(), 403);
    }
}
