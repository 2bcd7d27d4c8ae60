//! tus Concatenation, server side. Partial uploads (`Upload-Concat: partial`) are created and
//! filled like any upload — in parallel, each with its own lock — but are never finished on
//! their own. `POST /files/` with `Upload-Concat: final;{urls}` then:
//!
//! 1. holds every named partial (423 if one is being written), checks that each is the caller's
//!    (403), a partial (400), complete (400: `concatenation-unfinished` is not offered) and not
//!    expired (410);
//! 2. creates the final upload, its length the sum of theirs (413 above `max_upload_bytes`);
//! 3. joins the partial spools into the final's with `copy_file_range(2)` — in the kernel, and
//!    on filesystems that share extents (XFS, btrfs, bcachefs) as a reflink that copies no data
//!    at all — falling back to a plain read/write copy where the call is refused (another
//!    filesystem, an old kernel); then fdatasyncs it and records the final complete;
//! 4. finishes it through the same path as any complete upload ([`crate::tus::finish`]: probe,
//!    duplicate check, sha256, stored source, job) and, once it finished or was rejected, deletes
//!    the partials. When the finish fails for a retryable reason (store or queue down), the final
//!    stays complete — a body-less PATCH on it retries the finish — and the partials stay too.
//!
//! The sha256 of the final file is computed by the finish from the joined spool (one sequential
//! read): the partials' own hashers cannot be combined.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use ringcast_proto::auth::Caller;
use ringcast_proto::http::RequestHead;
use ringcast_proto::job::Priority;
use ringcast_proto::tus::TusError;
use ringcast_server::Response;

use crate::app::App;
use crate::error::IngestError;
use crate::tus::finish::{self, Finished};
use crate::tus::upload_store::{ConcatRole, UploadPhase, UploadState};
use crate::tus::{expiry, lock::UploadLock};

/// Create, join and finish a final upload made of `parts` (ids, in order).
pub async fn create_final(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    parts: Vec<String>,
    meta: BTreeMap<String, String>,
    priority: Priority,
) -> Result<Response, IngestError> {
    if head.header("upload-length").is_some() || head.header("upload-defer-length").is_some() {
        return Err(TusError::BadConcat(
            "a final upload's length is the sum of its partial uploads; send no Upload-Length"
                .into(),
        )
        .into());
    }
    if conn_body_expected(head) {
        return Err(TusError::BadConcat("a final upload takes no body".into()).into());
    }
    if let Some(video) = meta
        .get(UploadState::VIDEO_ID_KEY)
        .filter(|v| !v.is_empty())
    {
        crate::versions::check_target(app, caller, video).await?;
    }
    let mut held: Vec<UploadLock> = Vec::with_capacity(parts.len());
    let mut total: u64 = 0;
    for id in &parts {
        held.push(
            app.uploads
                .try_lock(id)
                .ok_or_else(|| IngestError::Locked(id.clone()))?,
        );
        let part = app
            .uploads
            .load(id)
            .await?
            .ok_or_else(|| TusError::BadConcat(format!("upload {id} does not exist here")))?;
        if !caller.may_change(Some(&part.owner)) {
            return Err(IngestError::Forbidden(format!(
                "upload {id} belongs to another owner"
            )));
        }
        if !part.is_partial() || part.phase != UploadPhase::Uploading {
            return Err(TusError::BadConcat(format!("upload {id} is not a partial upload")).into());
        }
        expiry::refuse_expired(app, &part)?;
        if !part.is_complete() {
            return Err(TusError::BadConcat(format!(
                "partial upload {id} is incomplete ({} bytes stored)",
                part.offset
            ))
            .into());
        }
        total = total
            .checked_add(part.length)
            .filter(|t| *t <= app.config.max_upload_bytes)
            .ok_or(TusError::LengthTooLarge {
                max: app.config.max_upload_bytes,
            })?;
    }
    if total == 0 {
        return Err(IngestError::BadRequest(
            "the partial uploads are empty: an empty file is not a video".into(),
        ));
    }
    let raw = head
        .header("upload-metadata")
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string);
    let role = ConcatRole::Final {
        parts: parts.clone(),
    };
    let mut state = app
        .uploads
        .create_with(total, meta, raw, priority, &caller.owner, |s| {
            s.concat = Some(role)
        })
        .await?;
    app.metrics.upload_created();
    let _lock = app
        .uploads
        .try_lock(&state.id)
        .ok_or_else(|| IngestError::Locked(state.id.clone()))?;
    let sources: Vec<PathBuf> = parts.iter().map(|p| app.uploads.spool_path(p)).collect();
    let target = app.uploads.spool_path(&state.id);
    let started = std::time::Instant::now();
    let joined =
        ringcast_infra::side_runtime::run_blocking(move || join(&sources, &target)).await??;
    if joined.bytes != total {
        return Err(IngestError::CorruptState {
            id: state.id.clone(),
            message: format!("partials hold {} bytes, expected {total}", joined.bytes),
        });
    }
    state.offset = total;
    app.uploads.save(&mut state).await?;
    tracing::info!(
        upload = %state.id,
        parts = parts.len(),
        bytes = total,
        in_kernel = joined.in_kernel,
        ms = started.elapsed().as_millis() as u64,
        "final upload joined from its partial uploads"
    );
    let location = app.config.upload_location(&state.id);
    let result = finish::finish(app, caller, &mut state, None).await;
    if state.phase != UploadPhase::Uploading {
        // Finished or rejected for good: the partials have served their purpose.
        drop(held);
        for id in &parts {
            if let Err(e) = app.uploads.remove_upload(id).await {
                tracing::warn!(upload = %id, error = %e, "could not delete a used partial upload");
            }
        }
    }
    let Finished {
        video_id, job_id, ..
    } = result?;
    let mut resp = Response::new(201)
        .header("Location", location)
        .header("Upload-Offset", state.offset.to_string())
        .header("Ringcast-Video-Id", video_id);
    resp = match job_id {
        Some(job) => resp.header("Ringcast-Job-Id", job),
        None => resp.header("Ringcast-Duplicate", "true"),
    };
    Ok(resp)
}

/// A final upload's creation request declares a body (none is allowed).
fn conn_body_expected(head: &RequestHead) -> bool {
    head.header("content-length")
        .is_some_and(|v| v.trim() != "0")
        || head.header("transfer-encoding").is_some()
}

/// `Upload-Concat` on a HEAD response: `partial`, or `final;` and the partials' URLs.
pub fn head_header(app: &App, state: &UploadState, resp: Response) -> Response {
    match &state.concat {
        None => resp,
        Some(ConcatRole::Partial) => resp.header("Upload-Concat", "partial"),
        Some(ConcatRole::Final { parts }) => {
            let urls: Vec<String> = parts
                .iter()
                .map(|p| app.config.upload_location(p))
                .collect();
            resp.header("Upload-Concat", format!("final;{}", urls.join(" ")))
        }
    }
}

/// What [`join`] did.
#[derive(Debug)]
pub struct Joined {
    pub bytes: u64,
    /// Every byte moved by `copy_file_range` (no read/write copy through user space).
    pub in_kernel: bool,
}

/// Append the `sources` files, in order, to `target` (which exists and is empty), then
/// fdatasync it. Blocking: runs on the side runtime's blocking pool.
pub fn join(sources: &[PathBuf], target: &std::path::Path) -> io::Result<Joined> {
    let out = std::fs::OpenOptions::new().write(true).open(target)?;
    let mut bytes = 0u64;
    let mut in_kernel = true;
    for source in sources {
        let input = std::fs::File::open(source)?;
        let len = input.metadata()?.len();
        let moved = copy_in_kernel(&input, &out, len)?;
        if moved < len {
            // The call is not available here: copy the rest through user space.
            in_kernel = false;
            let mut rest = io::Read::take(&input, len - moved);
            let mut w = &out;
            io::copy(&mut rest, &mut w)?;
        }
        bytes += len;
    }
    out.sync_data()?;
    Ok(Joined { bytes, in_kernel })
}

/// `copy_file_range(2)` from the current positions of `input` to `out` until `len` bytes moved;
/// returns how many moved before the kernel refused the call for this pair of files (0 when it
/// refuses at once) — the caller copies the rest itself.
fn copy_in_kernel(input: &std::fs::File, out: &std::fs::File, len: u64) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut moved = 0u64;
    while moved < len {
        let want = (len - moved).min(1 << 30) as usize;
        // SAFETY: both descriptors are open files owned by the caller for the whole call; null
        // offsets make the kernel use and advance the files' own positions.
        let n = unsafe {
            libc::copy_file_range(
                input.as_raw_fd(),
                std::ptr::null_mut(),
                out.as_raw_fd(),
                std::ptr::null_mut(),
                want,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(
                    libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM,
                ) => Ok(moved),
                Some(libc::EINTR) => continue,
                _ => Err(e),
            };
        }
        if n == 0 {
            // The source is shorter than its metadata said; the caller checks the total.
            break;
        }
        moved += n as u64;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_appends_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sources = Vec::new();
        for (i, body) in [&b"abc"[..], b"", b"defgh"].iter().enumerate() {
            let p = dir.path().join(format!("p{i}"));
            std::fs::write(&p, body).expect("write");
            sources.push(p);
        }
        let target = dir.path().join("final");
        std::fs::write(&target, b"").expect("create");
        let joined = join(&sources, &target).expect("join");
        assert_eq!(joined.bytes, 8);
        assert_eq!(std::fs::read(&target).expect("read"), b"abcdefgh");
    }
}
