//! `GET /v1/videos`: the caller's videos, newest first, a page at a time.
//!
//! Query: `limit` (1–100, default 20), `cursor` (the `next_cursor` of the page before),
//! `owner` (admin keys only: another owner's listing). The listing is the owner's sorted set
//! `rc:owner:{owner}:videos` (no SCAN); a page costs three Redis round trips whatever its
//! size: the page of ids (one script call), their hashes (one pipeline), their latest jobs'
//! states (one pipeline). The cursor names the last item of the page
//! ([`ringcast_proto::videos::Cursor`]), so videos added or deleted between two pages neither
//! repeat nor skip an item.
//!
//! ```json
//! {"owner":"alice","videos":[{…as GET /v1/videos/{id}…}],"next_cursor":"MToxNzY3…"}
//! ```
//! `next_cursor` is `null` on the last page.

use ringcast_infra::platform::videos::Videos;
use ringcast_proto::auth::Caller;
use ringcast_proto::http::RequestHead;
use ringcast_proto::job::JobStatus;
use ringcast_proto::videos::{Cursor, ListQuery};
use serde_json::{json, Value};

use crate::api::videos::{ended_job_status, video_json};
use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use ringcast_server::Response;

pub async fn list(app: &App, caller: &Caller, head: &RequestHead) -> Result<Response, IngestError> {
    let query =
        ListQuery::parse(head.query()).map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let owner = match &query.owner {
        Some(other) if *other != caller.owner && !caller.role.is_admin() => {
            return Err(IngestError::Forbidden(
                "only admin keys may list another owner's videos".into(),
            ))
        }
        Some(other) => other.as_str(),
        None => caller.owner.as_str(),
    };
    let videos = Videos::new(&app.queue);
    let (items, more) =
        with_timeout(videos.page(owner, query.cursor.as_ref(), query.limit())).await?;
    let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
    let hashes = with_timeout(videos.hashes(&ids)).await?;
    let jobs: Vec<String> = hashes
        .iter()
        .filter_map(|h| h.get("latest_job").cloned())
        .collect();
    let mut statuses = with_timeout(videos.job_statuses(&jobs)).await?.into_iter();
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for (id, hash) in ids.iter().zip(&hashes) {
        let status: Option<JobStatus> = match hash.get("latest_job") {
            Some(_) => statuses.next().flatten(),
            None => None,
        };
        // Deleted between the page and the read (its listing entry goes in the same step):
        // not listed.
        if hash.is_empty() {
            continue;
        }
        let status = status.or_else(|| ended_job_status(id, hash));
        out.push(video_json(id, hash, status.as_ref()));
    }
    let next = match (more, items.last()) {
        (true, Some((id, score))) => Value::from(
            Cursor {
                score: *score,
                id: id.clone(),
            }
            .encode(),
        ),
        _ => Value::Null,
    };
    let body = json!({ "owner": owner, "videos": out, "next_cursor": next });
    Ok(Response::json(200, &body).header("Cache-Control", "no-store"))
}
