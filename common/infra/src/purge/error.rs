//! The error type of publishing a purge.

use ringcast_proto::purge::PurgeMessageError;

use crate::side_runtime::SideError;

/// Why a purge could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// The message breaks a bound or names something that is not a key, prefix or id.
    #[error(transparent)]
    Message(#[from] PurgeMessageError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Side(#[from] SideError),
}
