//! Videos and their owners in Redis: the video hash `rc:video:{id}` (fields `owner`, `title`,
//! `created_ms`, `updated_ms` beside the job fields the queue keeps) and each owner's listing,
//! the sorted set `rc:owner:{owner}:videos` (score `created_ms`, member the video id), so an
//! owner's videos are listed newest first without SCAN.

use redis::aio::ConnectionManager;
use ringcast_proto::keys;

use crate::queue::{Queue, QueueError};
use crate::side_runtime;

/// Records a video the first time one of its versions is stored: the owner, title and
/// creation time never change afterwards (`HSETNX`), the listing entry is added once. A video
/// that already belongs to another owner is left alone (-1). Both keys are passed in `KEYS`.
const REGISTER: &str = r"
if redis.call('HSETNX', KEYS[1], 'owner', ARGV[1]) == 0 and
   redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return -1
end
local created = redis.call('HSETNX', KEYS[1], 'created_ms', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'title', ARGV[3]) end
redis.call('HSET', KEYS[1], 'updated_ms', ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', redis.call('HGET', KEYS[1], 'created_ms'), ARGV[4])
return created
";

/// What [`Videos::register`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new video, now `owner`'s.
    New,
    /// The video existed and is `owner`'s.
    Existing,
    /// The video belongs to someone else; nothing changed.
    OtherOwner,
}

/// The platform's videos. Cheap to clone.
#[derive(Clone)]
pub struct Videos {
    conn: ConnectionManager,
}

impl Videos {
    pub fn new(queue: &Queue) -> Self {
        Self {
            conn: queue.connection(),
        }
    }

    /// Record that a version of `video`, owned by `owner`, was stored (at `now_ms`): a new
    /// video gets its owner, title and creation time and joins the owner's listing; an
    /// existing one keeps them. Safe to repeat.
    pub async fn register(
        &self,
        video: &str,
        owner: &str,
        title: &str,
        now_ms: u64,
    ) -> Result<Registered, QueueError> {
        let mut conn = self.conn.clone();
        let (key, listing, owner, title, video) = (
            keys::video(video),
            keys::owner_videos(owner),
            owner.to_string(),
            title.to_string(),
            video.to_string(),
        );
        let created: i64 = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(REGISTER)
                .arg(2)
                .arg(&key)
                .arg(&listing)
                .arg(&owner)
                .arg(now_ms)
                .arg(&title)
                .arg(&video)
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(match created {
            1 => Registered::New,
            -1 => Registered::OtherOwner,
            _ => Registered::Existing,
        })
    }
}
