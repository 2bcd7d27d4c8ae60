//! The dependency checks behind every service's `/readyz` (the answer's shape is
//! `ringcast_proto::health`). Each check runs on the side runtime under its own
//! [`CHECK_TIMEOUT`], so it can be awaited from a monoio core or from tokio alike, and a
//! dependency that hangs makes the instance unready instead of hanging the probe.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::queue::Queue;
use crate::side_runtime;
use crate::store::ObjectStore;

/// Bound on one dependency check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The key a store check asks for with `HEAD` (absent: a 404 is a good answer too).
pub const STORE_PROBE_KEY: &str = "readyz/probe";

/// Run `fut` on the side runtime within [`CHECK_TIMEOUT`], its error shown as text.
async fn bounded<F, E>(fut: F) -> Result<(), String>
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let run = side_runtime::run(async move {
        match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    });
    run.await.map_err(|e| e.to_string())?
}

/// The object store answers a `HEAD` (found or not found both prove it is there).
pub async fn store(store: &ObjectStore) -> Result<(), String> {
    let store = store.clone();
    bounded(async move { store.head(STORE_PROBE_KEY).await.map(|_| ()) }).await
}

/// The queue's Redis answers `PING`.
pub async fn queue(queue: &Queue) -> Result<(), String> {
    let queue = queue.clone();
    bounded(async move { queue.ping().await }).await
}

/// A Redis `PING` check for a service that holds no [`Queue`] (the edge): its own lazily
/// opened connection, so an edge started while Redis is down becomes ready once it is back.
#[derive(Clone)]
pub struct RedisPing {
    conn: ConnectionManager,
}

impl RedisPing {
    /// A check against the Redis at `url` (connects on first use).
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            conn: crate::lazy_redis::connect(url, CHECK_TIMEOUT)?,
        })
    }

    /// `PING`.
    pub async fn check(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        bounded(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn redis_ping_fails_without_a_server_and_passes_with_one() {
        // A port nothing listens on: refused at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let down = RedisPing::new(&format!("redis://127.0.0.1:{port}")).expect("url");
        assert!(block_on(down.check()).is_err());

        let redis = ringcast_testkit::RedisServer::start();
        let up = RedisPing::new(&redis.url).expect("url");
        assert_eq!(block_on(up.check()), Ok(()));
    }

    #[test]
    fn store_check_passes_on_an_empty_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = crate::config::StoreConfig {
            root: dir.path().to_path_buf(),
            ..Default::default()
        };
        let s = block_on(ObjectStore::open(&cfg)).expect("open");
        assert_eq!(block_on(store(&s)), Ok(()));
    }
}
