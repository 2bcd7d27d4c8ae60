//! Publishing a purge to every edge: `PUBLISH rc:purge {json}` after the message passed its
//! bounds ([`PurgeMessage::to_json`]), so no edge ever receives one it would refuse.
//!
//! The answer is the number of subscribers that received it (Redis's `PUBLISH` reply): 0 means
//! no edge was connected. Edges that were disconnected resynchronise on reconnect (see
//! [`super::subscriber`]), so a purge is never lost for long, only possibly late.

use std::time::Duration;

use redis::aio::ConnectionManager;
use ringcast_proto::keys::PURGE_CHANNEL;
use ringcast_proto::purge::PurgeMessage;

use super::error::PurgeError;
use crate::queue::Queue;
use crate::side_runtime;

/// Publish `msg` on the queue's connection (what the ingest calls after a delete, a rollback
/// or a visibility change). Returns how many subscribers received it.
pub async fn publish(queue: &Queue, msg: &PurgeMessage) -> Result<u64, PurgeError> {
    let json = msg.to_json()?;
    let conn = queue.connection();
    publish_json(conn, json).await
}

async fn publish_json(mut conn: ConnectionManager, json: String) -> Result<u64, PurgeError> {
    let receivers = side_runtime::run(async move {
        redis::cmd("PUBLISH")
            .arg(PURGE_CHANNEL)
            .arg(json)
            .query_async::<u64>(&mut conn)
            .await
    })
    .await??;
    Ok(receivers)
}

/// A publisher with its own connection, opened on first use and re-opened after a failure (an
/// edge: Redis may be down when it starts). Cheap to clone.
#[derive(Clone)]
pub struct PurgePublisher {
    conn: ConnectionManager,
}

impl PurgePublisher {
    /// A publisher for the Redis at `url`; connects lazily. Each command is bounded by
    /// `timeout` (connect and answer).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, PurgeError> {
        Ok(Self {
            conn: crate::lazy_redis::connect(url, timeout)?,
        })
    }

    /// Publish `msg`; how many subscribers received it.
    pub async fn publish(&self, msg: &PurgeMessage) -> Result<u64, PurgeError> {
        let json = msg.to_json()?;
        publish_json(self.conn.clone(), json).await
    }
}
