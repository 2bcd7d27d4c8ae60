//! The `[scan]` section of the ingest config: where clamd listens and how long a scan may take.

use std::path::PathBuf;
use std::time::Duration;

use ringcast_infra::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Virus-scan settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// clamd to stream finished uploads to: a unix socket path (`/run/clamav/clamd.ctl`) or
    /// `host:port` (`127.0.0.1:3310`). Empty (the default): no virus scan.
    pub clamd: String,
    /// Seconds a scan (connect, stream, verdict) may take; longer → 503 `scan_unavailable`,
    /// the upload kept for a retry.
    pub timeout_secs: u64,
    /// Largest file clamd accepts: set it to clamd's `StreamMaxLength` (clamd.conf; Debian's
    /// default 25M, at most 4G). With `clamd` set, uploads larger than this are refused at
    /// creation (413): `max_upload_bytes` is lowered to it, since a file clamd cannot see whole
    /// is never accepted.
    pub max_stream_bytes: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            clamd: String::new(),
            timeout_secs: 60,
            max_stream_bytes: 25 * 1024 * 1024,
        }
    }
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl ScanConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.clamd.is_empty() {
            return Ok(());
        }
        if self.timeout_secs == 0 {
            return invalid("scan.timeout_secs must be at least 1");
        }
        if self.max_stream_bytes == 0 || self.max_stream_bytes > 4 << 30 {
            return invalid("scan.max_stream_bytes must be between 1 and 4 GiB (clamd's limit)");
        }
        if !self.clamd.starts_with('/') {
            let port_ok = self
                .clamd
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return invalid("scan.clamd must be a unix socket path (/…) or host:port");
            }
        }
        Ok(())
    }

    /// The configured clamd, `None` when scanning is off.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self.clamd.as_str() {
            "" => None,
            p if p.starts_with('/') => Some(Endpoint::Unix(PathBuf::from(p))),
            addr => Some(Endpoint::Tcp(addr.to_string())),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let cfg = |s: &str| ScanConfig {
            clamd: s.into(),
            ..ScanConfig::default()
        };
        assert_eq!(cfg("").endpoint(), None);
        assert_eq!(
            cfg("/run/clamd.sock").endpoint(),
            Some(Endpoint::Unix("/run/clamd.sock".into()))
        );
        assert_eq!(
            cfg("127.0.0.1:3310").endpoint(),
            Some(Endpoint::Tcp("127.0.0.1:3310".into()))
        );
        assert!(cfg("localhost:3310").validate().is_ok());
        for bad in ["clamd", "host:", ":3310", "host:99999"] {
            assert!(cfg(bad).validate().is_err(), "{bad}");
        }
    }
}
