//! Polls the ingest's video API (`GET /v1/videos/{id}`) for the state of the latest transcode.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The job part of the video API answer.
#[derive(Debug, Clone, Deserialize)]
pub struct JobView {
    pub state: String,
    pub progress: f64,
    pub error: Option<String>,
}

/// The video API answer (fields the tools use).
#[derive(Debug, Clone, Deserialize)]
pub struct VideoView {
    pub video_id: String,
    pub current_version: Option<u32>,
    pub job: Option<JobView>,
    pub playback_url: String,
}

/// One GET of `{ingest}/v1/videos/{id}` (with `api_key` as the bearer, when given).
pub fn fetch(ingest: &str, video_id: &str, api_key: Option<&str>) -> anyhow::Result<VideoView> {
    let url = format!("{}/v1/videos/{video_id}", ingest.trim_end_matches('/'));
    let resp = crate::tus_client::authorized(ureq::get(&url), api_key)
        .timeout(Duration::from_secs(10))
        .call()
        .with_context(|| format!("GET {url}"))?;
    resp.into_json()
        .context("video API answer is not the expected JSON")
}

/// Poll until the job is `done` (Ok) or `failed` (Err), calling `progress` with each percent.
pub fn wait_done(
    ingest: &str,
    video_id: &str,
    api_key: Option<&str>,
    timeout: Duration,
    mut progress: impl FnMut(f64),
) -> anyhow::Result<VideoView> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = fetch(ingest, video_id, api_key)?;
        if let Some(job) = &v.job {
            progress(job.progress);
            match job.state.as_str() {
                "done" => return Ok(v),
                "failed" => bail!(
                    "transcode failed: {}",
                    job.error.as_deref().unwrap_or("no reason given")
                ),
                _ => {}
            }
        }
        if Instant::now() > deadline {
            bail!("transcode not done after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
