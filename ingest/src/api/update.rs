//! `PATCH /v1/videos/{id}`: change a video's title, description or visibility
//! (`application/json`, `{"title"?, "description"?, "visibility"?}`; the bounds are
//! [`ringcast_proto::videos::VideoPatch`]'s). Answers 200 with the video as `GET` shows it.
//!
//! A request that names `visibility` publishes a fleet-wide purge of the video's metadata
//! ([`PurgeMessage::video_changed`]) after the change is stored, so every edge drops its cached
//! visibility at once instead of after its TTL. If that publish fails the change stays and the
//! answer is 503: repeating the request stores the same values and publishes again.

use ringcast_infra::platform::videos::Videos;
use ringcast_infra::purge;
use ringcast_proto::auth::Caller;
use ringcast_proto::http::RequestHead;
use ringcast_proto::job::now_ms;
use ringcast_proto::purge::PurgeMessage;
use ringcast_proto::videos::VideoPatch;
use ringcast_server::{Conn, Response};

use crate::api::body::read_json;
use crate::api::videos::{current_json, load, Access};
use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;

pub async fn patch(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    id: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    // Who may change it comes before what the body says.
    load(app, caller, id, Access::Change).await?;
    let body = read_json(head, conn).await?;
    let patch = VideoPatch::parse(&body).map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let videos = Videos::new(&app.queue);
    if !with_timeout(videos.update(id, &patch.fields(), now_ms())).await? {
        return Err(IngestError::NotFound(format!("video {id}")));
    }
    if let Some(v) = patch.visibility {
        let receivers =
            with_timeout(purge::publish(&app.queue, &PurgeMessage::video_changed(id))).await?;
        tracing::info!(
            video = id,
            visibility = v.as_str(),
            edges = receivers,
            "visibility set"
        );
    }
    let video = with_timeout(app.queue.video(id)).await?;
    let body = current_json(app, id, &video).await?;
    Ok(Response::json(200, &body).header("Cache-Control", "no-store"))
}
