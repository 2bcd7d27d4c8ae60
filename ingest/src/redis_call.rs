//! A Redis call from a monoio core, bounded in time. The call itself runs on the tokio side
//! runtime (`ringcast_infra::side_runtime`); the core only waits for its answer, and gives up
//! after [`REDIS_TIMEOUT`] so a stuck Redis turns into a retryable error for the client instead
//! of a request that hangs.

use std::future::Future;
use std::time::Duration;

use crate::error::IngestError;

/// Redis calls are small; a longer wait means Redis is in trouble and the client should retry.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(10);

/// `fut`'s result, or [`IngestError::Timeout`] after [`REDIS_TIMEOUT`].
pub async fn with_timeout<T, E: Into<IngestError>>(
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, IngestError> {
    match monoio::time::timeout(REDIS_TIMEOUT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(IngestError::Timeout("redis")),
    }
}
