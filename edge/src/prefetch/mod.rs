//! Warming the memory tier with the object a player says it will ask for next: the CMCD `nor`
//! key (CTA-5004, [`ringcast_proto::cmcd`]), sent by hls.js, dash.js, Shaka and ExoPlayer when
//! CMCD is on. After answering an object request that carries one, the edge looks the hinted
//! object up in the background, so the player's next request is a hit instead of an origin
//! round trip.
//!
//! Bounded so a hint cannot be turned into load: the hinted path must stay inside the current
//! request's video (the same visibility the request was admitted for), an object already in the
//! memory tier is not looked up again, and at most [`stats::MAX_IN_FLIGHT`] warm-ups run at once per
//! process (more are dropped and counted). A warm-up is an ordinary lookup: it coalesces with
//! concurrent requests for the same object, goes through the edge tier's owner, and fills the
//! disk tier for large segments as a request would.

pub mod stats;

use ringcast_proto::cmcd;
use ringcast_proto::http::RequestHead;

use crate::routes::path::object_key;
use crate::shared::Shared;
use crate::tiers;

/// Follow the CMCD `nor` hint of `req` (for the object at `path`, `/v/…`) if it has one.
pub fn follow_hint(req: &RequestHead, path: &str, shared: &Shared) {
    let Some(nor) = cmcd::next_object(req.header("cmcd-request"), req.query()) else {
        return;
    };
    let key = cmcd::resolve(path, &nor).and_then(|next| object_key(&next).ok());
    let Some(key) = key.filter(|k| shared.cache.peek(k).is_none()) else {
        shared.prefetch.ignored();
        return;
    };
    if !shared.prefetch.try_start() {
        return;
    }
    let shared = shared.clone();
    monoio::spawn(async move {
        let result = tiers::lookup(&shared.tiers(), &key).await;
        if let Err(e) = &result {
            tracing::debug!(key, error = %e, "CMCD warm-up failed");
        }
        shared.prefetch.finished(result.is_ok());
    });
}
