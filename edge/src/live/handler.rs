//! Live LL-HLS requests (rfc8216bis §6.2.5–6.2.6, DESIGN.md "LL-HLS rules"), answered from the
//! followed event stream; everything else (and every rendition without a stream) falls through
//! to the object path.
//!
//! - `GET .../{rendition}/index.m3u8[?_HLS_msn=M[&_HLS_part=P]][&_HLS_skip=YES|v2]`: the media
//!   playlist rendered from the model. Blocking requests are held until the follower publishes
//!   a state that has the segment/part (woken by the publish, no polling), 400/503 and the
//!   ENDLIST rules come from [`decide`]. `EXT-X-RENDITION-REPORT`s name the other renditions of
//!   the version's master (`v/{video}/{version}/master.m3u8`) that have a live state. A
//!   request without directives (a player's first) is held until the next part is listed, at
//!   most two part targets ([`FreshHold`]): players place their start from it.
//! - `GET .../part{msn}.{i}.m4s` of a followed rendition: the preload-hinted part is held until
//!   announced ([`preload_part_ready`]), then fetched through the object path and sent in full;
//!   a part neither announced nor hinted is 404.
//!
//! Prefetch: when a core first serves a rendition it hands its view the action to run after each
//! publish (`prefetch_newest_part`): load the newest listed part into the memory cache, through
//! the coalescing loader (one origin fetch across cores), so the herd of players woken by that
//! publish finds it cached.
//!
//! Identical requests coalesce per core: renders are cached under [`cache_key_for`] (path plus
//! canonical `_HLS_` directives) for one combination of published states, so every request
//! woken by one publish shares one render, and its hits share one ready-made head per second
//! ([`ReadyHead`]: the herd's responses are a reference to a head and one to a body).

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_proto::keys;
use ringcast_proto::live::{
    blocking_timeout, cache_key_for, decide, preload_part_ready, push_cache_key, Decision,
    FreshHold, LiveRendition, PartStatus, PlaylistOpts, ReloadQuery,
};
use ringcast_proto::prometheus::Histogram;

use crate::error::EdgeError;
use crate::live::core_view::{
    core_rendition, AfterPublish, CoreRendition, ReadyHead, ReadyKey, SiblingName, Siblings,
};
use crate::live::feed::{Phase, Published, RenditionFeed};
use crate::live::keys::{
    live_cache_control, live_max_age, live_target, renditions_in_master, report_uri, LiveTarget,
    RenditionRef,
};
use crate::response::Response;
use crate::shared::Shared;
use crate::tiers;
use crate::tiers::content;
use crate::tiers::memory::EntryKind;

/// How soon a missing master is looked for again. A found rendition list is kept: a version's
/// master is written once, and re-reading it would put an origin fetch on the wake-up path.
const SIBLINGS_RETRY: Duration = Duration::from_secs(1);

/// This core's view of rendition `id` (see [`core_rendition`]); a core that subscribes now gets
/// the prefetch of [`prefetch_newest_part`] after each publish.
fn view_of(shared: &Shared, id: &RenditionRef<'_>, start: bool) -> Option<Rc<CoreRendition>> {
    core_rendition(&shared.live, id, start, || prefetch_newest_part(shared))
}

/// After a publish: prefetch the newest listed part of the published rendition.
fn prefetch_newest_part(shared: &Shared) -> AfterPublish {
    // One copy of the handles per rendition and core, made when the core subscribes.
    let shared = Arc::new(shared.clone());
    Box::new(move |feed: &RenditionFeed| {
        let published = feed.load();
        let Phase::Live(state) = &published.phase else {
            return;
        };
        let (Some(msn), Some(part)) = (state.last_msn(), state.last_part()) else {
            return;
        };
        let id = &feed.id;
        let key = keys::rendition_file(
            &id.video,
            id.version,
            &id.rendition,
            &keys::part_name(msn, part),
        );
        match shared.cache.peek(&key) {
            Some(e) if e.kind == EntryKind::NotFound => shared.cache.forget_not_found(&key),
            Some(_) => return,
            None => {}
        }
        let shared = Arc::clone(&shared);
        monoio::spawn(async move {
            shared.live.stats().part_prefetches.fetch_add(1, Relaxed);
            if let Err(error) = tiers::lookup(&shared.tiers(), &key).await {
                tracing::debug!(%key, %error, "part prefetch failed; players fetch it themselves");
            }
        });
    })
}

/// What the live path made of a request.
#[derive(Debug)]
pub enum Live {
    /// A live playlist, answered.
    Answered(Response),
    /// A part of a followed rendition, announced (after a hold, if it was the preload-hinted
    /// one): the object path serves it, from a shared in-memory file when several viewers
    /// ask for it ([`crate::live::hot_parts`]).
    Part,
    /// Not live: the object path serves it as any stored object.
    NotLive,
}

/// The live answer for object `key` requested as `path?query`. `private`: a private video's
/// playlist (`Cache-Control: private`).
pub async fn serve(
    key: &str,
    path: &str,
    query: Option<&str>,
    private: bool,
    shared: &Shared,
) -> Result<Live, EdgeError> {
    if !shared.live.enabled() {
        return Ok(Live::NotLive);
    }
    match live_target(key) {
        Some(LiveTarget::Playlist(id)) => {
            Ok(match playlist(&id, path, query, private, shared).await? {
                Some(resp) => Live::Answered(resp),
                None => Live::NotLive,
            })
        }
        Some(LiveTarget::Part { id, msn, part }) => {
            Ok(match hold_part(&id, msn, part, shared).await? {
                PartHold::NotFollowed => Live::NotLive,
                PartHold::Listed => Live::Part,
                PartHold::Announced => {
                    // A request that missed the part before it was announced may have left a
                    // "not found" in the cache; the part exists now.
                    shared.cache.forget_not_found(key);
                    Live::Part
                }
            })
        }
        None => Ok(Live::NotLive),
    }
}

async fn playlist(
    id: &RenditionRef<'_>,
    path: &str,
    query: Option<&str>,
    private: bool,
    shared: &Shared,
) -> Result<Option<Response>, EdgeError> {
    let hub = &shared.live;
    let Some(view) = view_of(shared, id, true) else {
        return Ok(None);
    };
    // One clock read serves the touch, the arrival and the first decision (the live path's
    // clock: how long a request waited is judged on it; the monoio timer only decides when to
    // look again). A wait for the follower's probe (a rendition's first request) is not
    // counted as waiting for the playlist: the clock is read again after it.
    let mut now = hub.now();
    view.touch_at(hub, now);
    let (p, probe_waited) = probed(&view, shared).await;
    if !matches!(p.phase, Phase::Live(_)) {
        return Ok(None);
    }
    let q = ReloadQuery::parse(query.unwrap_or("")).map_err(|e| match e {
        ringcast_proto::live::LiveError::BadRequest(m) => EdgeError::LiveBadRequest(m),
        other => EdgeError::LiveBadRequest(other.to_string()),
    })?;
    if probe_waited {
        now = hub.now();
    }
    let arrived = now;
    let mut held = false;
    // A request without directives waits for the next part (fixed on arrival), so the player
    // that places its start from it sees the live edge as it is (`FreshHold`).
    let mut fresh: Option<Option<FreshHold>> = None;
    // Its follower stopped meanwhile (idle): the state it left is as fresh as it gets.
    let mut fresh_over = false;
    loop {
        let p = view.feed.load();
        let Phase::Live(state) = &p.phase else {
            return Ok(None);
        };
        let fresh = *fresh.get_or_insert_with(|| FreshHold::for_request(state, &q));
        let waited = now.saturating_duration_since(arrived);
        let decision = match &fresh {
            Some(_) if fresh_over => Decision::Ready,
            Some(hold) => hold.decide(state, waited),
            None => decide(state, &q, waited),
        };
        match decision {
            Decision::Ready => {
                hub.stats().playlists.fetch_add(1, Relaxed);
                let latency = view.latency(hub.stats());
                // A fresh hold's wait is not a blocking reload's wake-up.
                let woken = (held && fresh.is_none())
                    .then(|| (Instant::now(), observe_wake(&latency.event_to_wake, &p)));
                let resp = respond(&view, id, state, p.gen, path, &q, private, now, shared).await;
                if let Some((at, true)) = woken {
                    latency.wake_to_response.observe(at.elapsed().as_secs_f64());
                }
                return Ok(Some(resp));
            }
            Decision::Wait { remaining } => {
                if !held {
                    held = true;
                    let counter = if fresh.is_some() {
                        &hub.stats().fresh_holds
                    } else {
                        &hub.stats().blocked
                    };
                    counter.fetch_add(1, Relaxed);
                }
                view.wait_change(p.gen, remaining).await;
                if view.feed.is_stopped() {
                    if fresh.is_none() {
                        return Err(EdgeError::LiveUnavailable);
                    }
                    fresh_over = true;
                }
                now = hub.now();
                view.touch_at(hub, now);
            }
            Decision::BadRequest(m) => return Err(EdgeError::LiveBadRequest(m)),
            Decision::Unavailable => {
                hub.stats().blocked_unavailable.fetch_add(1, Relaxed);
                return Err(EdgeError::LiveUnavailable);
            }
        }
    }
}

/// A held request was woken by publish `p`: the time since the Redis entry of its event, when
/// the publish came from one (wall clocks of Redis and the edge; one host or NTP apart).
/// Returns whether it was observed.
fn observe_wake(series: &Histogram, p: &Published) -> bool {
    let Some(entry_ms) = p.entry_ms else {
        return false;
    };
    let lag_ms = ringcast_proto::job::now_ms().saturating_sub(entry_ms);
    series.observe(lag_ms as f64 / 1000.0);
    true
}

/// The rendered playlist for `state` (generation `gen`), from the core's render cache when the
/// same request was answered for the same states (`now`: the live path's clock, just read).
#[allow(clippy::too_many_arguments)]
async fn respond(
    view: &CoreRendition,
    id: &RenditionRef<'_>,
    state: &Arc<LiveRendition>,
    gen: u64,
    path: &str,
    q: &ReloadQuery,
    private: bool,
    now: Instant,
    shared: &Shared,
) -> Response {
    let siblings = sibling_states(view, id, now, shared).await;
    let stamp = siblings
        .reports
        .iter()
        .fold(gen, |acc, (_, g, _)| acc.wrapping_add(*g));
    thread_local! {
        /// The render-cache key of the current request, built in place: a hit (every request
        /// of a herd but one) allocates nothing for it.
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let cached = KEY.with_borrow_mut(|key| {
        key.clear();
        push_cache_key(key, path, q);
        view.cached(key, stamp)
    });
    let Some(render) = cached else {
        shared.live.stats().renders.fetch_add(1, Relaxed);
        let opts = PlaylistOpts {
            skip: q.skip.is_some(),
            rendition_reports: siblings
                .reports
                .iter()
                .filter_map(|(i, _, s)| s.rendition_report(report_uri(&siblings.names[*i].name)))
                .collect(),
        };
        let body = Bytes::from(state.playlist(&opts).render());
        view.store_render(cache_key_for(path, q), stamp, body.clone(), now);
        return playlist_response(state, path, q, private, body, 0, "MISS");
    };
    // Every hit of this render in this second with this age gets the same head: built once.
    let key = ReadyKey {
        date_secs: ringcast_server::coarse_unix_secs(),
        age_secs: now.saturating_duration_since(render.at).as_secs(),
        private,
    };
    if let Some(ready) = render.head.borrow().as_ref().filter(|h| h.key == key) {
        return Response::with_shared_head(Arc::clone(&ready.head), render.body.clone());
    }
    let resp = playlist_response(
        state,
        path,
        q,
        private,
        render.body.clone(),
        key.age_secs,
        "HIT",
    );
    let (resp, head) = resp.into_shared();
    *render.head.borrow_mut() = Some(ReadyHead { key, head });
    resp
}

/// The response carrying playlist `body` of `state` (a render `age_secs` old; `status`: the
/// render cache's `X-Cache`).
fn playlist_response(
    state: &LiveRendition,
    path: &str,
    q: &ReloadQuery,
    private: bool,
    body: Bytes,
    age_secs: u64,
    status: &'static str,
) -> Response {
    let max_age = live_max_age(
        q.is_blocking(),
        state.ended(),
        state.target_duration(),
        state.part_target(),
    );
    let cache_control = cache_control_value(max_age, private, |max_age| {
        let cache_control = live_cache_control(
            q.is_blocking(),
            state.ended(),
            state.target_duration(),
            state.part_target(),
        );
        debug_assert!(cache_control.ends_with(&format!("={max_age}")));
        if private {
            content::private_live_cache_control(cache_control)
        } else {
            cache_control
        }
    });
    Response::new(200)
        .header("Cache-Control", cache_control)
        .header("Age", age_value(age_secs))
        .header("X-Cache", status)
        .body(content::content_type(path), body)
}

/// Distinct live `Cache-Control` values a core keeps as constants.
const INTERNED_MAX: usize = 64;

/// The `Cache-Control` of a live playlist with `max_age` (public or `private`), built by `make`
/// the first time a core meets it. The values come from a tiny set (`max-age` of six target
/// durations or half a part target), so each core keeps the first [`INTERNED_MAX`] it meets as
/// constants (leaked once, kept for the process's life) and answers a herd without formatting
/// and allocating one per response; past that, each response owns its value.
fn cache_control_value(
    max_age: u64,
    private: bool,
    make: impl FnOnce(u64) -> String,
) -> Cow<'static, str> {
    thread_local! {
        static VALUES: std::cell::RefCell<std::collections::HashMap<(u64, bool), &'static str>> =
            std::cell::RefCell::default();
    }
    VALUES.with_borrow_mut(|values| {
        if let Some(v) = values.get(&(max_age, private)) {
            return Cow::Borrowed(*v);
        }
        let v = make(max_age);
        if values.len() >= INTERNED_MAX {
            return Cow::Owned(v);
        }
        let v: &'static str = Box::leak(v.into_boxed_str());
        values.insert((max_age, private), v);
        Cow::Borrowed(v)
    })
}

/// The `Age` of a render: a live playlist is re-rendered with every part, so its age is almost
/// always a single digit, which needs no allocation.
fn age_value(secs: u64) -> Cow<'static, str> {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(secs as usize) {
        Some(d) => Cow::Borrowed(d),
        None => Cow::Owned(secs.to_string()),
    }
}

/// The other renditions of the version that have a live state.
struct SiblingStates {
    names: Rc<Vec<SiblingName>>,
    /// `(index in names, generation, state)`.
    reports: Vec<(usize, u64, Arc<LiveRendition>)>,
}

/// The [`SiblingStates`] of `id` (`now`: the live path's clock for this request).
async fn sibling_states(
    view: &CoreRendition,
    id: &RenditionRef<'_>,
    now: Instant,
    shared: &Shared,
) -> SiblingStates {
    // The first render on this core waits for the siblings' probes so its reports are complete;
    // later ones never wait (a sibling without a stream is probed again every probe_ttl_ms).
    let first = view.siblings.borrow().is_none();
    let names = sibling_names(view, id, now, shared).await;
    let hub = &shared.live;
    let mut out = Vec::new();
    for (i, sibling) in names.iter().enumerate() {
        if sibling.name == id.rendition {
            continue;
        }
        let sib_id = RenditionRef {
            dir: &sibling.dir,
            video: id.video,
            version: id.version,
            rendition: &sibling.name,
        };
        let Some(sib) = view_of(shared, &sib_id, true) else {
            continue;
        };
        sib.touch(hub);
        let p = if first {
            probed(&sib, shared).await.0
        } else {
            sib.feed.load()
        };
        if let Phase::Live(s) = &p.phase {
            out.push((i, p.gen, Arc::clone(s)));
        }
    }
    SiblingStates {
        names,
        reports: out,
    }
}

/// The follower's state once its probe and catch-up are done (the first request of a rendition
/// waits for them, at most `probe_timeout_ms`; later ones find it at once, without reading the
/// clock), and whether it waited.
async fn probed(view: &CoreRendition, shared: &Shared) -> (Arc<Published>, bool) {
    let p = view.feed.load();
    if !matches!(p.phase, Phase::Probing) || view.feed.is_stopped() {
        return (p, false);
    }
    let deadline = Instant::now() + Duration::from_millis(shared.live.settings().probe_timeout_ms);
    loop {
        let p = view.feed.load();
        let left = deadline.saturating_duration_since(Instant::now());
        if !matches!(p.phase, Phase::Probing) || left.is_zero() || view.feed.is_stopped() {
            return (p, true);
        }
        view.wait_change(p.gen, left).await;
    }
}

/// The renditions listed by the version's master, or else by the video's current master when it
/// points at this version (kept per core once found, see [`SIBLINGS_RETRY`]).
async fn sibling_names(
    view: &CoreRendition,
    id: &RenditionRef<'_>,
    now: Instant,
    shared: &Shared,
) -> Rc<Vec<SiblingName>> {
    if let Some(s) = view.siblings.borrow().as_ref() {
        if s.refresh_at.is_none_or(|at| now < at) {
            return Rc::clone(&s.names);
        }
    }
    let mut names = None;
    let owned = id.to_id();
    for (key, prefix) in owned.master_keys() {
        let fetched = crate::tiers::lookup(&shared.tiers(), &key).await;
        names = match fetched {
            Ok(found) if found.entry.kind == EntryKind::Object => {
                std::str::from_utf8(&found.entry.body)
                    .ok()
                    .and_then(|text| renditions_in_master(text, &prefix))
            }
            _ => None,
        };
        if names.is_some() {
            break;
        }
    }
    let refresh_at = if names.is_some() {
        None
    } else {
        Some(now + SIBLINGS_RETRY)
    };
    let names = Rc::new(
        names
            .unwrap_or_default()
            .into_iter()
            .map(|name| SiblingName {
                dir: owned.sibling(&name).dir(),
                name,
            })
            .collect(),
    );
    *view.siblings.borrow_mut() = Some(Siblings {
        names: Rc::clone(&names),
        refresh_at,
    });
    names
}

/// What [`hold_part`] found.
enum PartHold {
    /// No follower runs for the rendition (or it stopped): the part is a stored object.
    NotFollowed,
    /// The part is listed in the followed rendition's state.
    Listed,
    /// It was the preload-hinted part and was announced while held.
    Announced,
}

/// Holds a GET of the preload-hinted part of a followed rendition until it is announced
/// (rfc8216bis §6.2.6); `Ok` lets the object path serve it.
async fn hold_part(
    id: &RenditionRef<'_>,
    msn: u64,
    part: u32,
    shared: &Shared,
) -> Result<PartHold, EdgeError> {
    let hub = &shared.live;
    let Some(view) = view_of(shared, id, false) else {
        return Ok(PartHold::NotFollowed);
    };
    let arrived = hub.now();
    view.touch_at(hub, arrived);
    let mut held = false;
    loop {
        let p = view.feed.load();
        let Phase::Live(state) = &p.phase else {
            return Ok(PartHold::NotFollowed);
        };
        match preload_part_ready(state, msn, part) {
            PartStatus::Ready => {
                if held {
                    observe_wake(&view.latency(hub.stats()).event_to_part_release, &p);
                    return Ok(PartHold::Announced);
                }
                return Ok(PartHold::Listed);
            }
            PartStatus::NotFound => return Err(EdgeError::NotFound),
            PartStatus::Pending => {
                let left = blocking_timeout(state)
                    .saturating_sub(hub.now().saturating_duration_since(arrived));
                if left.is_zero() {
                    hub.stats().blocked_unavailable.fetch_add(1, Relaxed);
                    return Err(EdgeError::LiveUnavailable);
                }
                if !held {
                    held = true;
                    hub.stats().part_waits.fetch_add(1, Relaxed);
                }
                view.wait_change(p.gen, left).await;
                if view.feed.is_stopped() {
                    return Ok(PartHold::NotFollowed);
                }
            }
        }
    }
}
