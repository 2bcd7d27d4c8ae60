//! The edge's read of a video's visibility: `HGET rc:video:{id} visibility` on the side
//! runtime, over one shared connection that is opened on first use and re-opened after a
//! failure (an edge may start before Redis). What the value means, and how long an answer is
//! trusted, is `ringcast_proto::visibility`.

use std::time::Duration;

use redis::aio::ConnectionManager;
use ringcast_proto::keys;
use ringcast_proto::visibility::{Visibility, FIELD};

use crate::side_runtime::{self, SideError};

/// Why a visibility could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VisibilityError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Side(#[from] SideError),
}

/// Reads visibilities from the Redis at its URL. Cheap to clone.
#[derive(Clone)]
pub struct VisibilityReader {
    conn: ConnectionManager,
}

impl VisibilityReader {
    /// A reader for `url`; connects lazily. Each lookup is bounded by `timeout` (connect and
    /// answer) and tried once: the caller keeps its old answer on failure.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, VisibilityError> {
        Ok(Self {
            conn: crate::lazy_redis::connect(url, timeout)?,
        })
    }

    /// The visibility of video `id` (absent field or video = public, unknown value = private).
    pub async fn get(&self, id: &str) -> Result<Visibility, VisibilityError> {
        let mut conn = self.conn.clone();
        let key = keys::video(id);
        let value: Option<String> = side_runtime::run(async move {
            redis::cmd("HGET")
                .arg(key)
                .arg(FIELD)
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(Visibility::from_field(value.as_deref()))
    }
}
