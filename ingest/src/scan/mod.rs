//! Virus scan of finished uploads (DESIGN.md "Virus scan"): when `scan.clamd` is configured,
//! the complete spool file is streamed to clamd with `INSTREAM` ([`clamd`]; framing and reply
//! parsing in [`ringcast_proto::clamd`]) before the upload is accepted — before a version is
//! chosen, a source stored or a job queued.
//!
//! - clean: the finish carries on;
//! - infected: 422 `infected` with the signature name; the upload is rejected, its spool and
//!   state deleted (a later HEAD/PATCH gets 404);
//! - no verdict (clamd unreachable, timed out, failed, or its `StreamMaxLength` smaller than
//!   configured here): 503 `scan_unavailable` with `Retry-After`; the upload is kept complete,
//!   and the client's retry of the final PATCH scans again.
//!
//! Files larger than clamd takes are refused before they are uploaded: with a scanner
//! configured, `max_upload_bytes` is lowered to `scan.max_stream_bytes` (413 at creation), so
//! no upload is ever accepted unscanned or half-scanned.

pub mod clamd;
pub mod config;

use ringcast_proto::clamd::Verdict;

use crate::admission::metrics::ScanOutcome;
use crate::admission::AdmissionError;
use crate::app::App;
use crate::error::IngestError;
use crate::tus::upload_store::UploadState;

/// Why a scan did not pass.
pub enum ScanFailed {
    /// A signature matched (its name).
    Infected(String),
    /// No verdict: the 503 to answer.
    Unavailable(IngestError),
}

/// Scan the complete upload `state` when a scanner is configured.
pub async fn check(app: &App, state: &UploadState) -> Result<(), ScanFailed> {
    let cfg = &app.config.scan;
    let Some(endpoint) = cfg.endpoint() else {
        return Ok(());
    };
    let path = app.uploads.spool_path(&state.id);
    let started = std::time::Instant::now();
    let outcome = clamd::scan_file(&endpoint, &path, cfg.timeout()).await;
    let ms = started.elapsed().as_millis() as u64;
    let unavailable = |why: String| {
        app.metrics.admission.scanned(ScanOutcome::Unavailable);
        tracing::error!(upload = %state.id, %why, "virus scan gave no verdict; 503");
        Err(ScanFailed::Unavailable(
            AdmissionError::ScanUnavailable(why).into(),
        ))
    };
    match outcome {
        Ok(Verdict::Clean) => {
            app.metrics.admission.scanned(ScanOutcome::Clean);
            tracing::info!(upload = %state.id, bytes = state.length, ms, "virus scan: clean");
            Ok(())
        }
        Ok(Verdict::Infected(signature)) => {
            app.metrics.admission.scanned(ScanOutcome::Infected);
            tracing::warn!(upload = %state.id, owner = %state.owner, %signature, ms, "virus scan: infected");
            Err(ScanFailed::Infected(signature))
        }
        Ok(Verdict::SizeLimitExceeded) => unavailable(format!(
            "clamd refused {} bytes: its StreamMaxLength is below scan.max_stream_bytes",
            state.length
        )),
        Ok(Verdict::Error(msg)) => unavailable(format!("clamd: {msg}")),
        Err(e) => unavailable(e.to_string()),
    }
}

/// The answer for an infected upload (422 with the signature).
pub fn infected(signature: String) -> IngestError {
    AdmissionError::Infected { signature }.into()
}

/// After [`crate::tus::finish`] rejected an infected upload (spool gone), its state goes too:
/// nothing of it stays on the ingest.
pub fn forget(app: &App, state: &UploadState) {
    crate::admission::quota::discard_files(app, &state.id);
}
