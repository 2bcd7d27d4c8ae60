//! The one error type of the queue, shared by the producer side and the consumer.

use crate::side_runtime::SideError;

/// Errors talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Side(#[from] SideError),
}
