//! One simulated HLS player: loads the master playlist, picks a rendition, then plays like a
//! real client would — VOD at playback pace with a bounded buffer, live with LL-HLS blocking
//! reloads (`_HLS_msn`/`_HLS_part`) and parts, or plain reloads when the server cannot block.
//! A playback clock tracks the buffer: when media arrives later than it would have been
//! played, that is a stall.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringcast_proto::playlist::{is_master, parse_master, parse_media, MediaPlaylist, Variant};

use crate::http_client::Conn;
use crate::stats::{Kind, Live, Stats};
use crate::url::{parse_date_time, resolve};

/// How a viewer picks its rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rendition {
    Random,
    Lowest,
    Highest,
    /// Start lowest, switch by measured throughput (VOD only).
    Abr,
}

/// What every viewer shares.
#[derive(Debug, Clone)]
pub struct PlayerConfig {
    pub addr: std::net::SocketAddr,
    pub master: String,
    pub deadline: Instant,
    pub rendition: Rendition,
    /// Seconds of media a VOD player buffers ahead before it waits.
    pub max_buffer: f64,
    pub request_timeout: Duration,
    /// Static herd mode instead of playing (see [`Herd`]).
    pub herd: Option<Herd>,
}

/// Static herd mode: every viewer GETs `playlist` then `part` once per `interval`, all viewers
/// on the same ticks (counted from `epoch`): the burst an LL-HLS part announcement releases,
/// replayed against a server of static files (scripts/bench-live-cpu compares nginx with it).
#[derive(Debug, Clone)]
pub struct Herd {
    pub playlist: String,
    pub part: String,
    pub interval: Duration,
    pub epoch: Instant,
}

impl Herd {
    /// The first tick strictly after `now`.
    fn next_tick(&self, now: Instant) -> Instant {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        let step = self.interval.as_nanos().max(1);
        let k = u32::try_from(since / step + 1).unwrap_or(u32::MAX);
        self.epoch + self.interval * k
    }
}

/// The playback clock: media seconds received vs. wall time since playback began.
struct Clock {
    start: Option<Instant>,
    buffered: f64,
    stalled: Duration,
}

impl Clock {
    fn new() -> Self {
        Self {
            start: None,
            buffered: 0.0,
            stalled: Duration::ZERO,
        }
    }

    fn played(&self, now: Instant) -> f64 {
        self.start.map_or(0.0, |s| {
            (now - s).saturating_sub(self.stalled).as_secs_f64()
        })
    }

    /// Media of `dur` seconds arrived at `now`; returns how long the player had been dry, if
    /// it was.
    fn arrived(&mut self, now: Instant, dur: f64) -> Option<Duration> {
        let mut stall = None;
        match self.start {
            None => self.start = Some(now),
            Some(_) => {
                let played = self.played(now);
                if played > self.buffered {
                    let d = Duration::from_secs_f64(played - self.buffered);
                    self.stalled += d;
                    stall = Some(d);
                }
            }
        }
        self.buffered += dur;
        stall
    }

    /// How long to wait before the buffer is below `max` seconds again.
    fn wait_for_room(&self, now: Instant, max: f64) -> Option<Duration> {
        self.start?;
        let ahead = self.buffered - self.played(now);
        (ahead > max).then(|| Duration::from_secs_f64(ahead - max))
    }
}

struct Viewer<'a> {
    cfg: &'a PlayerConfig,
    conn: Conn,
    stats: Rc<RefCell<Stats>>,
    live: Arc<Live>,
    rng: SmallRng,
    /// Throughput estimate in bits/s (ABR), exponentially weighted.
    throughput: f64,
}

/// Run one viewer until the deadline.
pub async fn run(cfg: Rc<PlayerConfig>, stats: Rc<RefCell<Stats>>, live: Arc<Live>, seed: u64) {
    let mut v = Viewer {
        cfg: &cfg,
        conn: Conn::new(cfg.addr, cfg.request_timeout),
        stats,
        live,
        rng: SmallRng::seed_from_u64(seed),
        throughput: 0.0,
    };
    v.stats.borrow_mut().viewers_started += 1;
    v.live.add(&v.live.viewers, 1);
    if let Some(herd) = &cfg.herd {
        v.herd(herd).await;
    }
    while cfg.herd.is_none() && Instant::now() < cfg.deadline {
        if v.session().await.is_none() {
            // Something failed (already counted): back off like a player would, then retry.
            v.sleep(Duration::from_millis(500)).await;
        }
    }
    v.live
        .viewers
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

impl Viewer<'_> {
    /// Static herd mode: the two GETs on every tick until the deadline.
    async fn herd(&mut self, h: &Herd) {
        loop {
            let due = h.next_tick(Instant::now());
            if due >= self.cfg.deadline {
                return;
            }
            monoio::time::sleep(due.saturating_duration_since(Instant::now())).await;
            if self
                .fetch(&h.playlist, Kind::BlockingPlaylist, false)
                .await
                .is_some()
            {
                self.fetch(&h.part, Kind::Part, false).await;
            }
        }
    }

    fn done(&self) -> bool {
        Instant::now() >= self.cfg.deadline
    }

    async fn sleep(&self, d: Duration) {
        let left = self.cfg.deadline.saturating_duration_since(Instant::now());
        monoio::time::sleep(d.min(left)).await;
    }

    /// GET and record; `None` on any failure (counted as an error).
    async fn fetch(
        &mut self,
        target: &str,
        kind: Kind,
        keep: bool,
    ) -> Option<(Vec<u8>, u64, Duration)> {
        let t0 = Instant::now();
        match self.conn.get(target, keep).await {
            Ok(r) if (200..300).contains(&r.status) => {
                let took = t0.elapsed();
                self.stats.borrow_mut().record(kind, took, r.body_len);
                self.live.add(&self.live.requests, 1);
                self.live.add(&self.live.bytes, r.body_len);
                Some((r.body, r.body_len, took))
            }
            Ok(r) => {
                self.stats.borrow_mut().error(r.status);
                self.live.add(&self.live.errors, 1);
                None
            }
            Err(_) => {
                self.stats.borrow_mut().error(0);
                self.live.add(&self.live.errors, 1);
                None
            }
        }
    }

    async fn playlist(&mut self, target: &str, kind: Kind) -> Option<MediaPlaylist> {
        let (body, _, _) = self.fetch(target, kind, true).await?;
        let text = String::from_utf8(body).ok()?;
        match parse_media(&text) {
            Ok(p) => Some(p),
            Err(_) => {
                self.stats.borrow_mut().error(1); // unparseable playlist
                None
            }
        }
    }

    fn pick(&mut self, variants: &[Variant]) -> usize {
        let by_bw = |a: &usize, b: &usize| variants[*a].bandwidth.cmp(&variants[*b].bandwidth);
        let idx: Vec<usize> = (0..variants.len()).collect();
        match self.cfg.rendition {
            Rendition::Random => self.rng.random_range(0..variants.len()),
            Rendition::Lowest => idx.iter().copied().min_by(by_bw).unwrap_or(0),
            Rendition::Highest => idx.iter().copied().max_by(by_bw).unwrap_or(0),
            Rendition::Abr => {
                let budget = self.throughput * 0.8;
                idx.iter()
                    .copied()
                    .filter(|i| (variants[*i].bandwidth as f64) <= budget)
                    .max_by(by_bw)
                    .or_else(|| idx.iter().copied().min_by(by_bw))
                    .unwrap_or(0)
            }
        }
    }

    /// One viewing session: master → rendition → play until the end or the deadline.
    async fn session(&mut self) -> Option<()> {
        let master_target = self.cfg.master.clone();
        let (body, _, _) = self.fetch(&master_target, Kind::Master, true).await?;
        let text = String::from_utf8(body).ok()?;
        let (variants, media_target) = if is_master(&text) {
            let m = parse_master(&text).ok()?;
            if m.variants.is_empty() {
                return None;
            }
            let i = self.pick(&m.variants);
            let t = resolve(&master_target, &m.variants[i].uri);
            (m.variants, t)
        } else {
            (Vec::new(), master_target.clone())
        };
        let pl = self.playlist(&media_target, Kind::Playlist).await?;
        if pl.end_list {
            self.play_vod(pl, media_target, &master_target, &variants)
                .await
        } else {
            self.play_live(pl, media_target).await
        }
    }

    async fn play_vod(
        &mut self,
        mut pl: MediaPlaylist,
        mut target: String,
        master: &str,
        variants: &[Variant],
    ) -> Option<()> {
        let mut clock = Clock::new();
        if let Some(map) = &pl.map_uri {
            self.fetch(&resolve(&target, map), Kind::Init, false)
                .await?;
        }
        let mut i = 0;
        while i < pl.segments.len() {
            if self.done() {
                return Some(());
            }
            if let Some(wait) = clock.wait_for_room(Instant::now(), self.cfg.max_buffer) {
                self.sleep(wait).await;
                continue;
            }
            let seg = &pl.segments[i];
            let dur = seg.duration;
            let seg_target = resolve(&target, &seg.uri);
            let (_, bytes, took) = self.fetch(&seg_target, Kind::Segment, false).await?;
            let bps = bytes as f64 * 8.0 / took.as_secs_f64().max(1e-6);
            self.throughput = if self.throughput == 0.0 {
                bps
            } else {
                0.7 * self.throughput + 0.3 * bps
            };
            if let Some(d) = clock.arrived(Instant::now(), dur) {
                self.stall(d);
            }
            i += 1;
            if self.cfg.rendition == Rendition::Abr && !variants.is_empty() {
                let want = resolve(master, &variants[self.pick(variants)].uri);
                if want != target {
                    // Switch at the segment boundary: same index in the other rendition.
                    pl = self.playlist(&want, Kind::Playlist).await?;
                    target = want;
                    if let Some(map) = &pl.map_uri {
                        self.fetch(&resolve(&target, map), Kind::Init, false)
                            .await?;
                    }
                }
            }
        }
        // Everything is downloaded: a player keeps playing its buffer before the next session.
        let left = clock.buffered - clock.played(Instant::now());
        if left > 0.0 {
            self.sleep(Duration::from_secs_f64(left)).await;
        }
        Some(())
    }

    fn stall(&mut self, dry: Duration) {
        self.stats.borrow_mut().stall(dry);
        self.live.add(&self.live.stalls, 1);
    }

    async fn play_live(&mut self, mut pl: MediaPlaylist, target: String) -> Option<()> {
        if let Some(map) = &pl.map_uri {
            self.fetch(&resolve(&target, map), Kind::Init, false)
                .await?;
        }
        let blocking = pl
            .server_control
            .as_ref()
            .is_some_and(|s| s.can_block_reload);
        let low_latency = blocking && pl.part_target.is_some();
        let mut clock = Clock::new();
        let mut msn = start_msn(&pl, low_latency);
        let mut part = 0usize;
        while !self.done() {
            match locate(&pl, msn, part, low_latency) {
                Located::Part {
                    uri,
                    duration,
                    end_offset,
                } => {
                    let t = resolve(&target, &uri);
                    self.fetch(&t, Kind::Part, false).await?;
                    self.arrive(&mut clock, duration, pdt_of(&pl, msn), end_offset);
                    part += 1;
                }
                Located::SegmentEnd => {
                    msn += 1;
                    part = 0;
                }
                Located::Segment { uri, duration } => {
                    let t = resolve(&target, &uri);
                    self.fetch(&t, Kind::Segment, false).await?;
                    self.arrive(&mut clock, duration, pdt_of(&pl, msn), duration);
                    msn += 1;
                    part = 0;
                }
                Located::Behind => {
                    // Fell out of the playlist window: rejoin at the live edge.
                    msn = pl.media_sequence + pl.segments.len().saturating_sub(1) as u64;
                    part = 0;
                }
                Located::NotYet => {
                    if pl.end_list {
                        return Some(());
                    }
                    let reload = if blocking {
                        let q = if low_latency {
                            format!("_HLS_msn={msn}&_HLS_part={part}")
                        } else {
                            format!("_HLS_msn={msn}")
                        };
                        let sep = if target.contains('?') { '&' } else { '?' };
                        self.playlist(&format!("{target}{sep}{q}"), Kind::BlockingPlaylist)
                            .await
                    } else {
                        let wait = pl.target_duration as f64 / 2.0;
                        self.sleep(Duration::from_secs_f64(wait.max(0.1))).await;
                        self.playlist(&target, Kind::Playlist).await
                    };
                    pl = reload?;
                }
            }
        }
        Some(())
    }

    /// Media arrived: feed the playback clock and, with a PROGRAM-DATE-TIME, record how far
    /// behind the live edge it arrived.
    fn arrive(
        &mut self,
        clock: &mut Clock,
        duration: f64,
        pdt: Option<SystemTime>,
        end_offset: f64,
    ) {
        if let Some(d) = clock.arrived(Instant::now(), duration) {
            self.stall(d);
        }
        if let Some(start) = pdt {
            let edge = start + Duration::from_secs_f64(end_offset);
            if let Ok(behind) = SystemTime::now().duration_since(edge) {
                self.stats.borrow_mut().live_latency(behind);
            }
        }
    }
}

/// The segment a live player starts at (its first part, or the whole segment without LL-HLS).
///
/// LL-HLS: the newest segment boundary at least `PART-HOLD-BACK` from the end of the playlist
/// (rfc8216bis EXT-X-SERVER-CONTROL: clients should not start closer; the GOP is the segment,
/// so a segment start is where an independent part is), which leaves the player that much
/// media to absorb a late part. Without `PART-HOLD-BACK`: the open segment's first part.
/// Without LL-HLS: the last complete segment.
fn start_msn(pl: &MediaPlaylist, low_latency: bool) -> u64 {
    let first = pl.media_sequence + pl.skipped_segments;
    let end = first + pl.segments.len() as u64;
    let hold_back = pl.server_control.as_ref().and_then(|s| s.part_hold_back);
    match (low_latency, hold_back) {
        (true, Some(hold_back)) => {
            let mut ahead: f64 = pl.pending_parts.iter().map(|p| p.duration).sum();
            let mut idx = pl.segments.len();
            while ahead < hold_back && idx > 0 {
                idx -= 1;
                ahead += pl.segments[idx].duration;
            }
            first + idx as u64
        }
        (true, None) if !pl.pending_parts.is_empty() => end,
        _ => end.saturating_sub(1),
    }
}

/// Where the player's cursor (msn, part) stands in a live playlist.
#[derive(Debug, PartialEq)]
enum Located {
    /// Fetch this part; `end_offset` is its end in seconds from the segment start.
    Part {
        uri: String,
        duration: f64,
        end_offset: f64,
    },
    /// All parts of a complete segment were fetched: move to the next segment.
    SegmentEnd,
    /// Fetch the whole segment (no parts listed for it, or not playing low-latency).
    Segment { uri: String, duration: f64 },
    /// The cursor is older than the playlist window.
    Behind,
    /// Not published yet: reload.
    NotYet,
}

fn locate(pl: &MediaPlaylist, msn: u64, part: usize, low_latency: bool) -> Located {
    if msn < pl.media_sequence + pl.skipped_segments {
        return Located::Behind;
    }
    let idx = (msn - pl.media_sequence - pl.skipped_segments) as usize;
    let part_at = |parts: &[ringcast_proto::playlist::Part]| {
        parts.get(part).map(|p| Located::Part {
            uri: p.uri.clone(),
            duration: p.duration,
            end_offset: parts[..=part].iter().map(|p| p.duration).sum(),
        })
    };
    if let Some(seg) = pl.segments.get(idx) {
        if !low_latency || (seg.parts.is_empty() && part == 0) {
            return Located::Segment {
                uri: seg.uri.clone(),
                duration: seg.duration,
            };
        }
        return part_at(&seg.parts).unwrap_or(Located::SegmentEnd);
    }
    if idx == pl.segments.len() && low_latency {
        return part_at(&pl.pending_parts).unwrap_or(Located::NotYet);
    }
    Located::NotYet
}

/// PROGRAM-DATE-TIME of segment `msn`, extrapolated from the nearest earlier segment that has
/// one (servers may tag only the first segment).
fn pdt_of(pl: &MediaPlaylist, msn: u64) -> Option<SystemTime> {
    let first = pl.media_sequence + pl.skipped_segments;
    let idx = msn.checked_sub(first)? as usize;
    let mut offset = 0.0;
    for i in (0..idx.min(pl.segments.len()) + 1).rev() {
        if i < idx {
            offset += pl.segments.get(i)?.duration;
        }
        if let Some(t) = pl
            .segments
            .get(i)
            .and_then(|s| s.program_date_time.as_deref())
        {
            return parse_date_time(t).map(|t| t + Duration::from_secs_f64(offset));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::playlist::{Part, Segment};

    fn live() -> MediaPlaylist {
        let mut pl = MediaPlaylist::live(2, 0.5, "init.mp4");
        pl.media_sequence = 10;
        for i in 10..12u64 {
            let mut s = Segment::new(format!("seg{i}.m4s"), 2.0);
            s.parts = (0..4)
                .map(|p| Part::new(format!("part{i}.{p}.m4s"), 0.5, p == 0))
                .collect();
            pl.segments.push(s);
        }
        pl.segments[0].program_date_time = Some("2026-11-27T08:00:00.000Z".into());
        pl.pending_parts = vec![Part::new("part12.0.m4s", 0.5, true)];
        pl
    }

    #[test]
    fn locates_parts_segments_and_the_edge() {
        let pl = live();
        assert_eq!(locate(&pl, 9, 0, true), Located::Behind);
        assert!(
            matches!(locate(&pl, 11, 2, true), Located::Part { ref uri, end_offset, .. } if uri == "part11.2.m4s" && (end_offset - 1.5).abs() < 1e-9)
        );
        assert_eq!(locate(&pl, 11, 4, true), Located::SegmentEnd);
        assert!(
            matches!(locate(&pl, 12, 0, true), Located::Part { ref uri, .. } if uri == "part12.0.m4s")
        );
        assert_eq!(locate(&pl, 12, 1, true), Located::NotYet);
        assert!(
            matches!(locate(&pl, 11, 0, false), Located::Segment { ref uri, .. } if uri == "seg11.m4s")
        );
        assert_eq!(locate(&pl, 12, 0, false), Located::NotYet);
    }

    #[test]
    fn starts_part_hold_back_from_the_live_edge() {
        let mut pl = live(); // PART-HOLD-BACK 1.5 s; the open segment 12 has one 0.5 s part
        assert_eq!(
            start_msn(&pl, true),
            11,
            "0.5 s < 1.5 s: back to segment 11"
        );
        pl.pending_parts = (0..3)
            .map(|p| Part::new(format!("part12.{p}.m4s"), 0.5, p == 0))
            .collect();
        assert_eq!(start_msn(&pl, true), 12, "1.5 s in the open segment");
        pl.server_control.as_mut().expect("live").part_hold_back = Some(9.0);
        assert_eq!(start_msn(&pl, true), 10, "never before the first segment");
        pl.server_control.as_mut().expect("live").part_hold_back = None;
        assert_eq!(start_msn(&pl, true), 12, "no hold-back: the open segment");
        assert_eq!(
            start_msn(&pl, false),
            11,
            "no LL-HLS: the last complete segment"
        );
    }

    #[test]
    fn extrapolates_program_date_time() {
        let pl = live();
        let t10 = pdt_of(&pl, 10).expect("pdt");
        let t12 = pdt_of(&pl, 12).expect("pdt");
        assert_eq!(
            t12.duration_since(t10).expect("later"),
            Duration::from_secs(4)
        );
        assert!(pdt_of(&pl, 9).is_none());
    }

    #[test]
    fn clock_counts_stalls() {
        let t0 = Instant::now();
        let mut c = Clock::new();
        assert_eq!(c.arrived(t0, 2.0), None);
        assert_eq!(
            c.arrived(t0 + Duration::from_secs(1), 2.0),
            None,
            "1 s played of 2 s buffered"
        );
        assert_eq!(
            c.arrived(t0 + Duration::from_secs(5), 2.0),
            Some(Duration::from_secs(1)),
            "5 s played of 4 s buffered"
        );
        assert_eq!(c.stalled, Duration::from_secs(1));
        assert!(c.wait_for_room(t0 + Duration::from_secs(5), 1.0).is_some());
    }
}
