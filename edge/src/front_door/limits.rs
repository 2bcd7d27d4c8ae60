//! The front door's rate limits: one table of token buckets per dimension (client address,
//! API key) for the whole process, behind a mutex the workers share. A client's connections
//! are spread over the workers by `SO_REUSEPORT`, so per-worker tables would give a client a
//! different allowance per connection; the lock is held for one hash-map lookup per request.
//!
//! The API key is the bearer token of `Authorization`, hashed (SipHash with a per-process
//! random key, so nobody can aim at another key's bucket): the front door neither
//! validates nor stores tokens (the ingest does the checking); a made-up token only gets its own
//! bucket, and the address limit still applies to it.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ringcast_proto::rate_limit::{Decision, Limiter, Rate};

use super::config::RateLimitConfig;
use super::error::FrontDoorError;

pub struct RateLimits {
    started: Instant,
    hasher: std::collections::hash_map::RandomState,
    tables: Mutex<Tables>,
    pub refused_by_address: std::sync::atomic::AtomicU64,
    pub refused_by_key: std::sync::atomic::AtomicU64,
}

struct Tables {
    by_address: Limiter<IpAddr>,
    by_key: Limiter<u64>,
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            started: Instant::now(),
            hasher: std::collections::hash_map::RandomState::new(),
            tables: Mutex::new(Tables {
                by_address: Limiter::new(
                    Rate::new(cfg.per_address_per_sec, cfg.per_address_burst),
                    cfg.max_entries,
                ),
                by_key: Limiter::new(
                    Rate::new(cfg.per_key_per_sec, cfg.per_key_burst),
                    cfg.max_entries,
                ),
            }),
            refused_by_address: Default::default(),
            refused_by_key: Default::default(),
        }
    }

    /// Take a token for this request's address and key, or the 429 to answer.
    pub fn check(
        &self,
        client: Option<IpAddr>,
        authorization: Option<&str>,
    ) -> Result<(), FrontDoorError> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.started.elapsed().as_millis() as u64;
        let key = authorization
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(|t| std::hash::BuildHasher::hash_one(&self.hasher, t.trim()));
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ip) = client {
            if let d @ Decision::Deny { .. } = t.by_address.check(&ip, now) {
                self.refused_by_address.fetch_add(1, Relaxed);
                return Err(FrontDoorError::RateLimited {
                    by: "client address",
                    retry_after_secs: d.retry_after_secs(),
                });
            }
        }
        if let Some(key) = key {
            if let d @ Decision::Deny { .. } = t.by_key.check(&key, now) {
                self.refused_by_key.fetch_add(1, Relaxed);
                return Err(FrontDoorError::RateLimited {
                    by: "API key",
                    retry_after_secs: d.retry_after_secs(),
                });
            }
        }
        Ok(())
    }

    /// Addresses and keys tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        (t.by_address.len(), t.by_key.len())
    }
}
