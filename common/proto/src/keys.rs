//! Names of object-store keys and Redis keys, in one place (see DESIGN.md "Storage and keys").
//!
//! Object keys:
//! ```text
//! sources/{video}/{version}/source
//! sources/{video}/latest-version              highest version ever given (text)
//! v/{video}/master.m3u8                       current version's master (mutable pointer)
//! v/{video}/{version}/master.m3u8
//! v/{video}/{version}/{rendition}/init.mp4 | seg{msn}.m4s | part{msn}.{i}.m4s | index.m3u8
//! v/{video}/{version}/poster.jpg | thumbnails.vtt | thumbs-{i}.jpg   (VOD; see `assets`)
//! ```

/// Object key of an uploaded source file.
pub fn source(video: &str, version: u32) -> String {
    format!("sources/{video}/{version}/source")
}

/// The highest version number ever given to a video, as decimal text: a floor for the next
/// version that survives the loss of Redis's data (a reused number would let edges serve the
/// year-cached objects of the old version under the same names). Under `sources/`, which the
/// edge never serves.
pub fn version_floor(video: &str) -> String {
    format!("sources/{video}/latest-version")
}

/// Prefix (with trailing slash) of everything a version of a video publishes.
pub fn version_prefix(video: &str, version: u32) -> String {
    format!("v/{video}/{version}/")
}

/// The versioned, immutable master playlist.
pub fn version_master(video: &str, version: u32) -> String {
    format!("v/{video}/{version}/master.m3u8")
}

/// The mutable master playlist that points at the current version (served as `/v/{video}/master.m3u8`).
pub fn current_master(video: &str) -> String {
    format!("v/{video}/master.m3u8")
}

/// Key of a file of the version itself (not of a rendition), e.g. `poster.jpg`.
pub fn version_file(video: &str, version: u32, file: &str) -> String {
    format!("v/{video}/{version}/{file}")
}

/// Key of one rendition's file, e.g. `rendition_file("abc", 1, "720p", "init.mp4")`.
pub fn rendition_file(video: &str, version: u32, rendition: &str, file: &str) -> String {
    format!("v/{video}/{version}/{rendition}/{file}")
}

/// Segment file name for media sequence number `msn`.
pub fn segment_name(msn: u64) -> String {
    format!("seg{msn}.m4s")
}

/// Part file name: part `index` of segment `msn`.
pub fn part_name(msn: u64, index: u32) -> String {
    format!("part{msn}.{index}.m4s")
}

/// Redis key prefix shared by every key the project writes.
pub const REDIS_PREFIX: &str = "rc:";

/// Job stream for a priority name (`high`, `normal`, `low`).
pub fn job_stream(priority: &str) -> String {
    format!("rc:jobs:{priority}")
}

/// Stream of live jobs (a job with `live`): read only by the transcoder's live slots, never by
/// its VOD workers, so a running stream and VOD uploads do not wait for each other.
pub const JOB_LIVE: &str = "rc:jobs:live";

/// Dead-letter stream for jobs that exhausted their retries.
pub const JOB_DLQ: &str = "rc:jobs:dlq";

/// Consumer group that every transcoder joins.
pub const JOB_GROUP: &str = "transcoders";

/// Hash with a job's state and progress.
pub fn job_state(job_id: &str) -> String {
    format!("rc:job:{job_id}")
}

/// Hash with a video's metadata (current version, latest job, title, and per published VOD
/// version its poster/thumbnail record in field `assets:{version}`, see [`crate::assets`]).
pub fn video(video_id: &str) -> String {
    format!("rc:video:{video_id}")
}

/// Field of the video hash holding a version's duration in milliseconds (from the ingest's
/// ffprobe of the source; absent for live versions and versions made before it was recorded).
pub fn duration_field(version: u32) -> String {
    format!("duration_ms:{version}")
}

/// Prefix (with trailing slash) of every object a video has under `v/` (what the edge serves).
pub fn video_prefix(video: &str) -> String {
    format!("v/{video}/")
}

/// Prefix (with trailing slash) of a video's sources and its version floor.
pub fn sources_prefix(video: &str) -> String {
    format!("sources/{video}/")
}

/// Hash of a live stream's bookkeeping (`publishes`: publishers so far, written by the ingest).
pub fn live_stream(video_id: &str, version: u32) -> String {
    format!("rc:live:{video_id}:{version}")
}

/// An API key's record (`owner`, `role`, `hash`, `label`, `created_ms`, `revoked_ms`;
/// `ringcast_proto::auth`).
pub fn api_key(key_id: &str) -> String {
    format!("rc:apikey:{key_id}")
}

/// Set of every API key id (for `keys list`; a handful per owner, never scanned per request).
pub const API_KEYS: &str = "rc:apikeys";

/// Sorted set of an owner's videos: score = `created_ms`, member = video id (listing, newest
/// first, without SCAN).
pub fn owner_videos(owner: &str) -> String {
    format!("rc:owner:{owner}:videos")
}

/// Redis pub/sub channel of fleet-wide purges: every edge subscribes, the ingest and an edge's
/// `POST /purge?fleet=1` publish JSON [`crate::purge::PurgeMessage`]s.
pub const PURGE_CHANNEL: &str = "rc:purge";

/// Duplicate detection: `owner`'s source with sha256 `hex` → the video id that has it (a
/// string). Per owner: the same bytes uploaded by someone else make their own video.
pub fn sha256(owner: &str, hex: &str) -> String {
    format!("rc:sha256:{owner}:{hex}")
}

/// Hash of a video's versions: field `{version}` = the version's JSON record
/// ([`crate::versions::VersionRecord`], written once by the ingest), field `{version}:state` =
/// the state its job ended in (written by the queue when the job ends, so it outlives the job
/// hash).
pub fn video_versions(video_id: &str) -> String {
    format!("rc:video:{video_id}:versions")
}

/// Hash of the upload in progress for a video (`upload_id`, `owner`, `offset`, `length`,
/// `updated_ms`; `outcome` once it ended without a job): what the progress stream reports
/// while bytes arrive. Written by the ingest that holds the spool, with a TTL.
pub fn video_upload(video_id: &str) -> String {
    format!("rc:video:{video_id}:upload")
}

/// A video id or upload id is 1–64 chars of `[A-Za-z0-9_-]`; anything else never becomes a key.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A plain file name inside a version (`poster.jpg`, `thumbs-0.jpg`): 1–64 chars of
/// `[A-Za-z0-9._-]`, not starting with a dot, so it never leaves the version's prefix.
pub fn is_valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_design() {
        assert_eq!(source("a", 1), "sources/a/1/source");
        assert_eq!(current_master("a"), "v/a/master.m3u8");
        assert_eq!(
            rendition_file("a", 2, "720p", &segment_name(7)),
            "v/a/2/720p/seg7.m4s"
        );
        assert_eq!(part_name(3, 1), "part3.1.m4s");
        assert_eq!(version_file("a", 2, "poster.jpg"), "v/a/2/poster.jpg");
        assert_eq!(job_stream("high"), "rc:jobs:high");
        assert_eq!(live_stream("cam", 2), "rc:live:cam:2");
        assert_eq!(PURGE_CHANNEL, "rc:purge");
        assert_eq!(sha256("alice", "ab12"), "rc:sha256:alice:ab12");
        assert_eq!(video_versions("a"), "rc:video:a:versions");
        assert_eq!(video_upload("a"), "rc:video:a:upload");
    }

    #[test]
    fn ids_are_restricted() {
        assert!(is_valid_id("Ab-9_x"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("../x"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(is_valid_file_name("thumbs-0.jpg"));
        assert!(!is_valid_file_name("../x"));
        assert!(!is_valid_file_name(".."));
        assert!(!is_valid_file_name("a/b.jpg"));
        assert!(!is_valid_file_name(""));
    }
}
