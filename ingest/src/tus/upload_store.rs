//! Upload spool and state on local disk, shared by every core.
//!
//! Each upload is two files in `{data_dir}/uploads/`:
//! - `{id}.bin`: the bytes received so far, written at their offsets (io_uring file writes);
//! - `{id}.json`: [`UploadState`] — length, durable offset, metadata, phase — replaced atomically
//!   (write temp file, fdatasync, rename, fsync the directory) so a crash leaves either the old or
//!   the new state, never a torn one. The offset in the JSON is only ever advanced after the
//!   matching `.bin` bytes were fdatasync'ed, so it never claims bytes that could be lost.
//!
//! The state on disk is the truth; nothing is cached in memory, so an upload works the same from
//! any core and survives restarts. Cross-core mutual exclusion of PATCHes is a small map of
//! lock holders ([`crate::tus::lock`]): taken once per PATCH, checked once per chunk, and taken
//! over from a holder whose client went silent.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use monoio::fs::{File, OpenOptions};
use ringcast_proto::container::Container;
use ringcast_proto::job::{now_ms, Priority};
use ringcast_proto::keys;
use ringcast_proto::tus::expiry::ExpiryPolicy;
use serde::{Deserialize, Serialize};

use crate::error::IngestError;
use crate::tus::expiry_index::ExpiryIndex;
use crate::tus::lock::{UploadLock, UploadLocks};
use crate::tus::source_hashers::SourceHashers;

/// Schema version of the state file.
pub const STATE_VERSION: u32 = 1;

/// Length of generated upload ids: 22 base62 digits hold all 128 bits of a UUID.
pub const ID_LEN: usize = 22;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random upload id: 22 characters of `[A-Za-z0-9]` from a v4 UUID (122 random bits from
/// the OS generator), so ids are unguessable and valid video ids and object-key components.
pub fn new_upload_id() -> String {
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut out = [b'0'; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// A new upload id for the node tagged `tag` (config `node_tag`): `{tag}-{22 base62}`, or the
/// bare 22 characters without a tag. The front door routes `/files/{id}` by the part before the
/// first `-` to the node that holds the spool (no sticky sessions); tags are `[a-z0-9]{1,12}`, so
/// a tagged id is at most 35 characters and still a valid id ([`keys::is_valid_id`]).
pub fn new_node_upload_id(tag: &str) -> String {
    match tag {
        "" => new_upload_id(),
        tag => format!("{tag}-{}", new_upload_id()),
    }
}

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadPhase {
    /// Receiving bytes (or complete but not yet stored/enqueued).
    Uploading,
    /// Stored and enqueued; the spool file is gone.
    Finished,
    /// Complete but not a video; refused for good.
    Rejected,
}

/// Decisions taken when finishing, persisted before acting on them so a retried finish reuses
/// the same version and job id instead of bumping the version or enqueueing a second job id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishPlan {
    pub version: u32,
    pub job_id: String,
    /// Detected container (serialized as `iso-bmff`, `matroska`, ...).
    pub container: Container,
    /// The video this upload becomes a version of, when the upload named one (tus metadata
    /// `video_id`); absent: the upload id is the (new) video's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    /// Hex sha256 of the source (computed while spooling, `crate::tus::dedup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// The source's duration as ffprobe read it (recorded in the video hash as
    /// `duration_ms:{version}`); absent in plans made before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl FinishPlan {
    /// The video the upload's version belongs to.
    pub fn video<'a>(&'a self, upload_id: &'a str) -> &'a str {
        self.video_id.as_deref().unwrap_or(upload_id)
    }
}

/// The upload's part in a concatenation (tus Concatenation extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConcatRole {
    /// A piece of a later final upload: complete when all its bytes are stored, never finished
    /// (probed, stored, queued) on its own.
    Partial,
    /// Made of these partial uploads (ids, in order) when it was created.
    Final { parts: Vec<String> },
}

/// The persistent state of one upload (`{id}.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadState {
    /// [`STATE_VERSION`].
    pub v: u32,
    pub id: String,
    /// Total size announced with `Upload-Length` (0 while [`UploadState::length_deferred`]).
    pub length: u64,
    /// Created with `Upload-Defer-Length: 1` and no PATCH has sent `Upload-Length` yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub length_deferred: bool,
    /// Partial or final upload of a concatenation; absent for a plain upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concat: Option<ConcatRole>,
    /// Bytes durably stored in the spool file.
    pub offset: u64,
    /// Decoded `Upload-Metadata` (values as UTF-8, lossy), for humans and the finish step.
    pub metadata: BTreeMap<String, String>,
    /// The `Upload-Metadata` header as received, echoed verbatim by HEAD (tus requires it; the
    /// decoded map cannot round-trip non-UTF-8 values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_metadata: Option<String>,
    pub priority: Priority,
    /// The owner of the key that created the upload (`anonymous` in open mode, and for state
    /// files written before owners existed); only its keys (and admins) may continue it.
    #[serde(default = "anonymous_owner")]
    pub owner: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub phase: UploadPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<FinishPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// The upload was the same bytes as this existing video of the owner's: finished without a
    /// version or a job (`crate::tus::dedup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// The expiry index bucket the upload was last filed under ([`crate::tus::expiry_index`]),
    /// so a save files it again only when its due time moved to another bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_bucket: Option<u64>,
}

fn anonymous_owner() -> String {
    ringcast_proto::auth::ANONYMOUS_OWNER.to_string()
}

impl UploadState {
    /// A fresh upload at offset 0.
    pub fn new(
        id: String,
        length: u64,
        metadata: BTreeMap<String, String>,
        raw_metadata: Option<String>,
        priority: Priority,
        owner: &str,
    ) -> Self {
        let now = now_ms();
        Self {
            v: STATE_VERSION,
            id,
            length,
            length_deferred: false,
            concat: None,
            offset: 0,
            metadata,
            raw_metadata,
            priority,
            owner: owner.to_string(),
            created_ms: now,
            updated_ms: now,
            phase: UploadPhase::Uploading,
            plan: None,
            reject_reason: None,
            duplicate_of: None,
            expiry_bucket: None,
        }
    }

    /// Metadata key naming the video an upload becomes a new version of.
    pub const VIDEO_ID_KEY: &'static str = "video_id";

    /// The video this upload adds a version to (`video_id` metadata), `None` for a new video.
    pub fn target_video(&self) -> Option<&str> {
        self.metadata
            .get(Self::VIDEO_ID_KEY)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The video whose progress this upload is: the named one, or the upload's own id.
    pub fn video(&self) -> &str {
        self.target_video().unwrap_or(&self.id)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, integers and maps with string keys always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parse and sanity-check a state file that claims to belong to `id`.
    pub fn from_json(id: &str, bytes: &[u8]) -> Result<Self, IngestError> {
        let corrupt = |message: String| IngestError::CorruptState {
            id: id.to_string(),
            message,
        };
        let state: Self = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if state.v != STATE_VERSION {
            return Err(corrupt(format!("unsupported state version {}", state.v)));
        }
        if state.id != id {
            return Err(corrupt(format!("file names upload {:?}", state.id)));
        }
        if !state.length_deferred && state.offset > state.length {
            return Err(corrupt(format!(
                "offset {} beyond length {}",
                state.offset, state.length
            )));
        }
        Ok(state)
    }

    /// Bytes still expected; while the length is deferred, what `max_upload_bytes` allows.
    pub fn remaining(&self, max_upload_bytes: u64) -> u64 {
        if self.length_deferred {
            max_upload_bytes.saturating_sub(self.offset)
        } else {
            self.length - self.offset
        }
    }

    /// All bytes are stored (never while the length is deferred).
    pub fn is_complete(&self) -> bool {
        !self.length_deferred && self.offset == self.length
    }

    pub fn is_partial(&self) -> bool {
        self.concat == Some(ConcatRole::Partial)
    }

    /// When the upload expires (tus Expiration): `lifetime_secs` after its last change.
    pub fn expires_ms(&self, lifetime_secs: u64) -> u64 {
        ringcast_proto::tus::expiry::expires_ms(self.updated_ms, lifetime_secs)
    }

    /// When the sweep deletes the record: an unfinished upload when it expires, a finished or
    /// rejected one's record after the (short) retention.
    pub fn due_ms(&self, policy: &ExpiryPolicy) -> u64 {
        policy.due_ms(self.phase != UploadPhase::Uploading, self.updated_ms)
    }
}

/// Spool directory plus the cross-core PATCH locks.
pub struct UploadStore {
    dir: PathBuf,
    /// Who writes which upload now ([`crate::tus::lock`]).
    pub locks: UploadLocks,
    /// sha256 state of uploads in progress (`crate::tus::dedup`).
    pub hashers: SourceHashers,
    /// Prefix of new upload ids ([`new_node_upload_id`]); empty = none.
    node_tag: String,
    /// When each record is due for deletion ([`crate::tus::expiry_index`]).
    pub expiry: ExpiryIndex,
}

impl UploadStore {
    /// Open (creating) `{data_dir}/uploads`, delete temp files a crash left behind and spool
    /// files of uploads that already finished, and file every record in the expiry index
    /// (entries a power loss took are back; the sweep drops duplicates). Runs once at start-up,
    /// before the cores.
    pub fn open(data_dir: &Path, policy: ExpiryPolicy) -> io::Result<Self> {
        let dir = data_dir.join("uploads");
        std::fs::create_dir_all(&dir)?;
        let expiry = ExpiryIndex::open(data_dir, policy)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
            } else if let Some(id) = name.strip_suffix(".json") {
                let Some(state) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| UploadState::from_json(id, &b).ok())
                else {
                    continue;
                };
                if state.phase != UploadPhase::Uploading {
                    let _ = std::fs::remove_file(dir.join(format!("{id}.bin")));
                }
                expiry.note(id, state.due_ms(&policy))?;
            }
        }
        Ok(Self {
            dir,
            locks: UploadLocks::default(),
            hashers: SourceHashers::default(),
            node_tag: String::new(),
            expiry,
        })
    }

    /// New uploads get ids prefixed with this node's tag (config `node_tag`, validated there).
    pub fn with_node_tag(mut self, tag: &str) -> Self {
        self.node_tag = tag.to_string();
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the spool file. Callers pass only ids that passed [`keys::is_valid_id`], so the
    /// name cannot leave the directory.
    pub fn spool_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.bin"))
    }

    pub fn state_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Claim the upload for one request, or `None` when another request (any core) holds it.
    pub fn try_lock(&self, id: &str) -> Option<UploadLock> {
        self.locks.try_lock(id)
    }

    /// Claim the upload for a client request, taking it over from an idle holder
    /// ([`UploadLocks::acquire`]); `None`: still busy after the wait (423).
    pub async fn acquire(&self, id: &str) -> Option<UploadLock> {
        self.locks.acquire(id).await
    }

    /// Create a new upload: an empty spool file and its state, both durable before the `201`.
    pub async fn create(
        &self,
        length: u64,
        metadata: BTreeMap<String, String>,
        raw_metadata: Option<String>,
        priority: Priority,
        owner: &str,
    ) -> Result<UploadState, IngestError> {
        self.create_with(length, metadata, raw_metadata, priority, owner, |_| {})
            .await
    }

    /// [`UploadStore::create`], with `adjust` applied to the new state before it is first saved
    /// (deferred length, concatenation role).
    pub async fn create_with(
        &self,
        length: u64,
        metadata: BTreeMap<String, String>,
        raw_metadata: Option<String>,
        priority: Priority,
        owner: &str,
        adjust: impl FnOnce(&mut UploadState),
    ) -> Result<UploadState, IngestError> {
        let id = new_node_upload_id(&self.node_tag);
        // create_new: a (practically impossible) id collision fails instead of sharing a file.
        let spool = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.spool_path(&id))
            .await?;
        spool.close().await?;
        let mut state = UploadState::new(id, length, metadata, raw_metadata, priority, owner);
        adjust(&mut state);
        self.save(&mut state).await?;
        Ok(state)
    }

    /// The upload's state, `None` when there is no such upload.
    pub async fn load(&self, id: &str) -> Result<Option<UploadState>, IngestError> {
        if !keys::is_valid_id(id) {
            return Ok(None);
        }
        match monoio::fs::read(self.state_path(id)).await {
            Ok(bytes) => UploadState::from_json(id, &bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Persist `state` atomically and durably (temp file + fdatasync + rename + directory
    /// fsync). Only the holder of the upload's lock (or its creator) calls this.
    pub async fn save(&self, state: &mut UploadState) -> Result<(), IngestError> {
        state.updated_ms = now_ms();
        // Filed before the state that makes it due exists, so no state is ever unindexed.
        let bucket = self
            .expiry
            .policy()
            .bucket_end_secs(state.due_ms(self.expiry.policy()));
        let moved_from = match state.expiry_bucket {
            Some(old) if old == bucket => None,
            old => {
                self.expiry
                    .note(&state.id, state.due_ms(self.expiry.policy()))?;
                state.expiry_bucket = Some(bucket);
                old
            }
        };
        let tmp = self.dir.join(format!("{}.json.tmp", state.id));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .await?;
        let (res, _) = file.write_all_at(state.to_json(), 0).await;
        res?;
        file.sync_data().await?;
        file.close().await?;
        // rename(2) is a metadata-only syscall; monoio's io_uring rename needs a feature flag on
        // the shared dependency and kernel >= 5.11, so the std call is used (it never waits on
        // data I/O; the fsyncs around it do, and those go through the ring).
        std::fs::rename(&tmp, self.state_path(&state.id))?;
        self.sync_dir().await?;
        // One entry per record: the one it was filed under before goes once the state naming the
        // new one is in place (a crash in between leaves a stale entry the sweep drops).
        if let Some(old) = moved_from {
            self.forget_expiry_entry(&state.id, old);
        }
        Ok(())
    }

    /// Drop the expiry index entry of a record that is gone or moved (best effort: a left-over
    /// entry is dropped by the sweep when its bucket is due).
    pub fn forget_expiry_entry(&self, id: &str, bucket: u64) {
        let entry = crate::tus::expiry_index::Entry {
            bucket,
            id: id.to_string(),
        };
        if let Err(e) = self.expiry.forget(&entry) {
            tracing::debug!(upload = %id, error = %e, "stale expiry index entry not removed");
        }
    }

    /// fsync the directory so renames and new files survive a power loss.
    async fn sync_dir(&self) -> io::Result<()> {
        let dir = File::open(&self.dir).await?;
        dir.sync_all().await?;
        dir.close().await
    }

    /// The spool file opened for writing at explicit offsets.
    pub async fn open_spool(&self, id: &str) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .read(true)
            .open(self.spool_path(id))
            .await
    }

    /// Up to `n` leading bytes of the spool file.
    pub async fn read_prefix(&self, id: &str, n: usize) -> io::Result<Vec<u8>> {
        let file = File::open(self.spool_path(id)).await?;
        let mut out = Vec::with_capacity(n);
        // read_at may return short counts; loop until `n` bytes or end of file.
        while out.len() < n {
            let len = out.len();
            let (res, buf) = file
                .read_at(monoio::buf::IoBufMut::slice_mut(out, len..n), len as u64)
                .await;
            out = buf.into_inner();
            if res? == 0 {
                break;
            }
        }
        file.close().await?;
        Ok(out)
    }

    /// Size of the spool file on disk.
    pub async fn spool_len(&self, id: &str) -> io::Result<u64> {
        let file = File::open(self.spool_path(id)).await?;
        let len = file.metadata().await?.len();
        file.close().await?;
        Ok(len)
    }

    /// Delete the upload for good: spool first, then the state (so a crash in between leaves a
    /// state without spool, which later requests report as corrupt rather than resuming into a
    /// missing file), and the in-memory hasher. No error for files already gone.
    pub async fn remove_upload(&self, id: &str) -> Result<(), IngestError> {
        self.remove_files(id)?;
        self.sync_dir().await?;
        Ok(())
    }

    /// [`UploadStore::remove_upload`] without the directory fsync: the expiry sweep deletes
    /// many and syncs the directory once per run ([`UploadStore::sync_spool_dir`]); a delete a
    /// power loss undoes is simply swept again.
    pub fn remove_files(&self, id: &str) -> io::Result<()> {
        self.remove_spool(id)?;
        match std::fs::remove_file(self.state_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.hashers.forget(id);
        Ok(())
    }

    /// fsync the spool directory (after [`UploadStore::remove_files`]).
    pub async fn sync_spool_dir(&self) -> io::Result<()> {
        self.sync_dir().await
    }

    /// Delete the spool file (no error when it is already gone).
    pub fn remove_spool(&self, id: &str) -> io::Result<()> {
        // unlink(2) is metadata-only, like rename in `save`.
        match std::fs::remove_file(self.spool_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tus::test_runtime::block_on;
    use std::collections::HashSet;

    fn sample() -> UploadState {
        let mut meta = BTreeMap::new();
        meta.insert("filename".to_string(), "clip.mp4".to_string());
        UploadState::new(
            new_upload_id(),
            1000,
            meta,
            Some("filename Y2xpcC5tcDQ=".into()),
            Priority::High,
            "alice",
        )
    }

    #[test]
    fn tagged_ids_carry_the_node_tag() {
        assert_eq!(new_node_upload_id("").len(), ID_LEN);
        for tag in ["a", "node7", "abcdefghijkl"] {
            let id = new_node_upload_id(tag);
            let (prefix, rest) = id.split_once('-').expect("a dash");
            assert_eq!(prefix, tag);
            assert_eq!(rest.len(), ID_LEN, "{id}");
            assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert!(keys::is_valid_id(&id), "{id}");
        }
    }

    #[test]
    fn ids_are_22_alphanumerics_and_unique() {
        let ids: HashSet<String> = (0..2000).map(|_| new_upload_id()).collect();
        assert_eq!(ids.len(), 2000);
        for id in &ids {
            assert_eq!(id.len(), ID_LEN, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert!(keys::is_valid_id(id));
        }
        // Both letter cases and digits show up: the whole base62 alphabet is in use.
        let all: String = ids.iter().map(String::as_str).collect();
        assert!(all.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(all.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(all.bytes().any(|b| b.is_ascii_digit()));
    }

    #[test]
    fn state_json_roundtrip() {
        let mut s = sample();
        s.offset = 600;
        s.plan = Some(FinishPlan {
            version: 2,
            job_id: "j".into(),
            container: Container::IsoBmff,
            video_id: Some("v".into()),
            source_sha256: Some("ab".into()),
            duration_ms: Some(1500),
        });
        s.duplicate_of = Some("d".into());
        let back = UploadState::from_json(&s.id, &s.to_json()).expect("roundtrip");
        assert_eq!(back, s);
        let text = String::from_utf8(s.to_json()).expect("utf8");
        assert!(text.contains("\"phase\": \"uploading\""), "{text}");
        assert!(text.contains("\"priority\": \"high\""), "{text}");
    }

    #[test]
    fn bad_state_files_are_reported_not_trusted() {
        let s = sample();
        let json = s.to_json();
        assert!(matches!(
            UploadState::from_json("other", &json),
            Err(IngestError::CorruptState { .. })
        ));
        assert!(UploadState::from_json(&s.id, b"{not json").is_err());
        let mut beyond = s.clone();
        beyond.offset = beyond.length + 1;
        assert!(UploadState::from_json(&s.id, &beyond.to_json()).is_err());
    }

    #[test]
    fn store_create_save_load_and_locks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = UploadStore::open(dir.path(), ExpiryPolicy::default()).expect("open");
        block_on(async {
            let mut s = store
                .create(10, BTreeMap::new(), None, Priority::Normal, "alice")
                .await
                .expect("create");
            assert_eq!(store.spool_len(&s.id).await.expect("len"), 0);
            s.offset = 4;
            store.save(&mut s).await.expect("save");
            let back = store.load(&s.id).await.expect("load").expect("exists");
            assert_eq!(back.offset, 4);
            assert_eq!(store.load("nope").await.expect("load"), None);
            assert_eq!(store.load("../etc").await.expect("load"), None);

            let f = store.open_spool(&s.id).await.expect("open spool");
            let (res, _) = f.write_all_at(b"abcdef".to_vec(), 0).await;
            res.expect("write");
            f.close().await.expect("close");
            assert_eq!(store.read_prefix(&s.id, 4).await.expect("prefix"), b"abcd");
            assert_eq!(
                store.read_prefix(&s.id, 100).await.expect("prefix"),
                b"abcdef"
            );

            let lock = store.try_lock(&s.id).expect("first lock");
            assert!(store.try_lock(&s.id).is_none(), "second lock refused");
            drop(lock);
            assert!(store.try_lock(&s.id).is_some(), "released on drop");
        });
        // Re-opening keeps uploads in progress and drops spool files of finished ones.
        let ids: Vec<String> = std::fs::read_dir(dir.path().join("uploads"))
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        let id = ids[0].split('.').next().unwrap_or_default().to_string();
        let reopened = UploadStore::open(dir.path(), ExpiryPolicy::default()).expect("reopen");
        assert!(reopened.spool_path(&id).exists());
        block_on(async {
            let mut s = reopened.load(&id).await.expect("load").expect("exists");
            s.phase = UploadPhase::Finished;
            reopened.save(&mut s).await.expect("save");
        });
        let reopened = UploadStore::open(dir.path(), ExpiryPolicy::default()).expect("reopen");
        assert!(!reopened.spool_path(&id).exists());
    }

    #[test]
    fn saves_file_records_by_due_time_and_a_reopen_files_them_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = ExpiryPolicy {
            unfinished_secs: 3600,
            finished_secs: 60,
            bucket_secs: 10,
        };
        let store = UploadStore::open(dir.path(), policy).expect("open");
        let now = now_ms();
        let (done, open_ids) = block_on(async {
            let mut open_ids = Vec::new();
            for _ in 0..20 {
                let s = store
                    .create(10, BTreeMap::new(), None, Priority::Normal, "o")
                    .await
                    .expect("create");
                open_ids.push(s.id);
            }
            let mut done = store
                .create(10, BTreeMap::new(), None, Priority::Normal, "o")
                .await
                .expect("create");
            done.phase = UploadPhase::Finished;
            store.save(&mut done).await.expect("save");
            // Saved again in the same bucket: not filed twice.
            store.save(&mut done).await.expect("save");
            (done.id, open_ids)
        });
        // After the finished record's retention only it is due; the 20 open uploads are not
        // read until their own time (an hour).
        let ids = |at: u64| -> Vec<String> {
            let mut v: Vec<String> = store
                .expiry
                .due(at, 1000)
                .expect("due")
                .into_iter()
                .map(|e| e.id)
                .collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(ids(now + 20_000), Vec::<String>::new());
        assert_eq!(ids(now + 71_000), vec![done.clone()]);
        let mut all = open_ids.clone();
        all.push(done.clone());
        all.sort();
        assert_eq!(ids(now + 3_611_000), all);
        // One entry per record: the finished one's entry from its creation (due in an hour) went
        // when it moved to the short retention.
        let entries = store.expiry.due(now + 3_611_000, 1000).expect("due");
        assert_eq!(entries.len(), 21, "{entries:?}");
        // An index lost with a power loss is rebuilt from the states at start-up.
        std::fs::remove_dir_all(dir.path().join("upload-expiry")).expect("rm index");
        let store = UploadStore::open(dir.path(), policy).expect("reopen");
        let due: Vec<String> = store
            .expiry
            .due(now + 71_000, 1000)
            .expect("due")
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(due, vec![done]);
    }
}
