//! The transcoder binary against real services: redis-server, the filesystem store or an s3s-fs
//! S3 server, and real ffmpeg. A job goes in through `Queue::enqueue`; what comes out is read
//! back from the store and checked the way a player would see it.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use redis::Commands;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_proto::live::{
    events_stream_key, LiveConfig, LiveEvent, LiveRendition, PlaylistOpts, EVENT_FIELD,
};
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{Stack, StoreBackend, TranscoderOptions};

use support::*;

/// Expected ladder of a 1280x720 source, highest first: name, width, height.
const LADDER_720: [(&str, u32, u32); 3] =
    [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)];

/// Transcode a 4 s 1280x720 clip with audio and check everything that was published.
fn transcode_and_check(backend: StoreBackend) {
    let stack = Stack::builder().redis().store(backend).start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(1280, 720)
        .seconds(4)
        .audio(true)
        .write(stack.dir(), "clip.mp4");
    // One setting comes from the environment, which wins over the file: the binary reads both.
    let mut t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-a")
            .env("RINGCAST_TRANSCODER_CONSUMER_NAME", "tc-a-from-env"),
    );
    assert!(
        t.log_text().contains("consumer=tc-a-from-env"),
        "{}",
        t.log_text()
    );
    let job = submit(&rt, &store, &queue, "vid720", &clip);

    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", t.log_text());
    assert_eq!(status.progress, 100.0);
    let video = rt.block_on(queue.video("vid720")).expect("video hash");
    assert_eq!(video.get("current_version").map(String::as_str), Some("1"));

    // Versioned master: three variants, highest first, every attribute a player needs.
    let master = get_text(&rt, &store, &keys::version_master("vid720", 1));
    let variants = parse_master(&master);
    assert_eq!(variants.len(), 3, "{master}");
    for (v, (name, w, h)) in variants.iter().zip(LADDER_720) {
        assert_eq!(v.uri, format!("{name}/index.m3u8"));
        assert_eq!(v.attrs["RESOLUTION"], format!("{w}x{h}"), "{master}");
        assert_eq!(v.attrs["FRAME-RATE"], "30.000");
        assert_eq!(v.attrs["NAME"], name);
        let codecs = &v.attrs["CODECS"];
        assert!(
            codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        let peak: u64 = v.attrs["BANDWIDTH"].parse().expect("BANDWIDTH");
        let avg: u64 = v.attrs["AVERAGE-BANDWIDTH"]
            .parse()
            .expect("AVERAGE-BANDWIDTH");
        assert!(
            avg > 100_000 && avg <= peak,
            "{name}: avg {avg} peak {peak}"
        );
    }
    let high = variants[0].attrs["CODECS"].clone();
    assert!(high.starts_with("avc1.64"), "720p is High profile: {high}");
    assert!(
        variants[2].attrs["CODECS"].starts_with("avc1.4d"),
        "360p is Main profile"
    );
    let peaks: Vec<u64> = variants
        .iter()
        .map(|v| v.attrs["BANDWIDTH"].parse().unwrap())
        .collect();
    assert!(
        peaks[0] > peaks[1] && peaks[1] > peaks[2],
        "bandwidth follows the ladder: {peaks:?}"
    );

    // The current master points into version 1.
    let current = parse_master(&get_text(&rt, &store, &keys::current_master("vid720")));
    let uris: Vec<&str> = current.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "1/720p/index.m3u8",
            "1/480p/index.m3u8",
            "1/360p/index.m3u8"
        ]
    );

    // Every media playlist validates, ends, and its segments decode at the right size.
    for (name, _, h) in LADDER_720 {
        let key = |f: &str| keys::rendition_file("vid720", 1, name, f);
        let playlist = parse_and_validate_media(&get_text(&rt, &store, &key("index.m3u8")));
        assert_eq!(playlist.segments.len(), 2, "{name}: 4 s in 2 s segments");
        assert_eq!(playlist.target_duration, 2);
        for s in &playlist.segments {
            assert!(
                (s.duration - 2.0).abs() < 0.05,
                "{name}: EXTINF {}",
                s.duration
            );
        }
        let init = rt
            .block_on(store.get(&key("init.mp4")))
            .expect("get")
            .expect("init");
        for s in &playlist.segments {
            let seg = rt
                .block_on(store.get(&key(&s.uri)))
                .expect("get")
                .expect("segment");
            assert_eq!(
                probe_init_plus_segment(stack.dir(), &init, &seg),
                (h, 60),
                "{name}/{}",
                s.uri
            );
        }
    }

    check_event_streams(
        &rt,
        &store,
        stack.redis_url(),
        "vid720",
        1,
        &LADDER_720.map(|l| l.0),
    );

    assert!(
        t.leftover_job_dirs().is_empty(),
        "job dir removed: {:?}",
        t.leftover_job_dirs()
    );
    assert_eq!(t.value("ringcast_transcoder_jobs_done_total"), 1.0);
    assert_eq!(t.value("ringcast_transcoder_segments_uploaded_total"), 6.0);
    assert!(t.value("ringcast_transcoder_transcode_seconds_total") > 0.0);
    let exit = t
        .process
        .terminate(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

/// The VOD job was also published progressively: the version is an EVENT playlist, and each
/// rendition's event stream applies cleanly to the edge's model (unbounded window), every
/// intermediate playlist validates, the last one is an EVENT playlist with ENDLIST listing the
/// same segments as the VOD playlist, every announced object exists, and each segment holds
/// exactly the bytes of its parts (plus an audio-only tail at most).
fn check_event_streams(
    rt: &tokio::runtime::Runtime,
    store: &ObjectStore,
    redis_url: &str,
    video: &str,
    version: u32,
    renditions: &[&str],
) {
    let client = redis::Client::open(redis_url).expect("client");
    let mut conn = client.get_connection().expect("connection");
    let playlist_type: Option<String> = conn
        .hget(keys::live_stream(video, version), "playlist_type")
        .expect("HGET");
    assert_eq!(playlist_type.as_deref(), Some("event"));
    for rendition in renditions {
        let reply: redis::streams::StreamRangeReply = conn
            .xrange_all(events_stream_key(video, version, rendition))
            .expect("XRANGE");
        let events: Vec<LiveEvent> = reply
            .ids
            .iter()
            .map(|e| {
                let json: String = e.get(EVENT_FIELD).expect("event field");
                LiveEvent::from_json(&json).expect("decodable event")
            })
            .collect();
        assert!(
            matches!(events.first(), Some(LiveEvent::Start { .. })),
            "{rendition}: {events:?}"
        );
        assert!(
            matches!(events.last(), Some(LiveEvent::End { last_msn: 1 })),
            "{rendition} ends with end after 2 segments: {events:?}"
        );
        let ttl: i64 = redis::cmd("TTL")
            .arg(events_stream_key(video, version, rendition))
            .query(&mut conn)
            .expect("TTL");
        assert!(
            (1..=600).contains(&ttl),
            "{rendition}: an ended stream expires (ended_stream_ttl_secs), TTL {ttl}"
        );
        let mut state =
            LiveRendition::new(LiveConfig::unbounded(), &events[0]).expect("start applies");
        let key = |f: &str| keys::rendition_file(video, version, rendition, f);
        let get = |f: &str| {
            rt.block_on(store.get(&key(f)))
                .expect("get")
                .unwrap_or_else(|| panic!("{rendition}: announced {f} is not in the store"))
        };
        get("init.mp4");
        let mut parts_of: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut part_count = 0;
        for (i, e) in events.iter().enumerate().skip(1) {
            state
                .apply(e.clone())
                .unwrap_or_else(|err| panic!("{rendition} event {i} {e:?}: {err}"));
            let pl = state.playlist(&PlaylistOpts::default());
            pl.validate().unwrap_or_else(|err| {
                panic!("{rendition} after event {i}: {err}\n{}", pl.render())
            });
            match e {
                LiveEvent::Part { msn, part, .. } => {
                    part_count += 1;
                    parts_of
                        .entry(*msn)
                        .or_default()
                        .extend_from_slice(&get(&keys::part_name(*msn, *part)));
                }
                LiveEvent::SegmentEnd { msn, .. } => {
                    let seg = get(&keys::segment_name(*msn));
                    let parts = parts_of.get(msn).expect("parts before their segment end");
                    assert!(
                        seg.starts_with(parts) && seg.len() - parts.len() < seg.len() / 10,
                        "{rendition} seg{msn}: {} bytes, its parts {}",
                        seg.len(),
                        parts.len()
                    );
                }
                _ => {}
            }
        }
        assert!(state.ended(), "{rendition} ended");
        assert!(
            part_count >= 8,
            "{rendition}: 0.5 s parts of 4 s, got {part_count}"
        );
        let text = state.playlist(&PlaylistOpts::default()).render();
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
        assert!(text.contains("#EXT-X-PART:"), "{text}");
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        // Same segment URIs as the VOD playlist.
        let vod = get_text(rt, store, &key("index.m3u8"));
        let uris = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("seg"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(uris(&text), uris(&vod), "{text}\n{vod}");
    }
}

#[test]
fn fs_store_job_is_transcoded_packaged_and_published() {
    transcode_and_check(StoreBackend::Fs);
}

#[test]
fn s3_store_job_is_transcoded_packaged_and_published() {
    transcode_and_check(StoreBackend::S3);
}

/// The public error of an unreadable source is a short message: no path of the transcoder's
/// work directory, no raw ffprobe line (`[mov,mp4,… @ 0x…]`). The log keeps the full text.
fn assert_public_error(error: &str, want: &str, work_dir: &std::path::Path) {
    assert_eq!(error, want);
    assert!(
        !error.contains(&*work_dir.to_string_lossy()),
        "work dir in {error:?}"
    );
    assert!(!error.contains('/') && !error.contains('['), "{error:?}");
}

#[test]
fn unreadable_source_fails_at_once_and_is_dead_lettered() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    // Random bytes: no container signature at all.
    let junk = stack.dir().join("junk.bin");
    let bytes: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, &bytes).expect("write");
    // An MP4 signature (`ftyp`) and media data but no `moov`: ffprobe itself refuses it, with
    // its work-directory path and `[mov,mp4,…]` prefix in its message.
    let no_moov = stack.dir().join("no-moov.mp4");
    let mut mp4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    mp4.extend_from_slice(&(8 + bytes.len() as u32).to_be_bytes());
    mp4.extend_from_slice(b"mdat");
    mp4.extend_from_slice(&bytes);
    std::fs::write(&no_moov, mp4).expect("write");
    let t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-bad")
            .toml("max_attempts = 3"),
    );
    let cases = [
        (
            "junk",
            &junk,
            "not a readable video: unknown container format",
        ),
        (
            "nomoov",
            &no_moov,
            "not a readable video: moov atom not found",
        ),
    ];
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    for (i, (video, source, want)) in cases.into_iter().enumerate() {
        let job = submit(&rt, &store, &queue, video, source);
        let status = wait_finished(&rt, &queue, &t, &job.job_id);
        assert_eq!(status.state, JobState::Failed);
        let error = status.error.expect("error recorded");
        assert_public_error(&error, want, &t.state_dir);

        let dlq: redis::streams::StreamRangeReply = conn.xrange_all(keys::JOB_DLQ).expect("XRANGE");
        assert_eq!(dlq.ids.len(), i + 1, "one dead letter per job");
        let reason: String = dlq.ids[i].get("reason").expect("reason");
        assert_public_error(&reason, want, &t.state_dir);
        assert!(rt
            .block_on(store.list(&format!("v/{video}/")))
            .expect("list")
            .is_empty());
        // The operator's log has the whole story under the job id.
        let log = t.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("job={}", job.job_id)) && l.contains("job failed")),
            "{log}"
        );
    }
    let log = t.log_text();
    assert!(
        log.contains("moov atom not found") && log.contains("Invalid data found"),
        "ffprobe's own lines are logged: {log}"
    );
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(keys::job_stream("normal"), keys::JOB_GROUP)
        .expect("XPENDING");
    assert_eq!(pending.count(), 0, "dead-lettered entries are acked");
    // Bad input is not retried.
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_failed_total"), 2.0);
    assert!(t.leftover_job_dirs().is_empty());
}

/// SIGTERM with no grace abandons the running job: not acked, not dead-lettered, state back to
/// queued, scratch space removed, process exits cleanly. Another transcoder then reclaims the
/// idle entry and finishes it.
#[test]
fn sigterm_abandons_the_running_job_and_another_worker_reclaims_it() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(10)
        .write(stack.dir(), "long.mp4");
    // The first transcoder reads its input in real time (`-re` through a wrapper), so the job
    // is certainly still running when the signal arrives; no sleeps or races involved.
    let slow_ffmpeg = realtime_ffmpeg(stack.dir());
    let timings = "shutdown_grace_ms = 0\nreclaim_idle_ms = 1000";
    let mut first = stack.spawn(
        TranscoderOptions::new()
            .name("tc-first")
            .toml(timings)
            .ffmpeg_path(&slow_ffmpeg),
    );
    let job = submit(&rt, &store, &queue, "long", &clip);
    wait_for_job(
        &rt,
        &queue,
        &first,
        &job.job_id,
        Duration::from_secs(120),
        |s| s.state == JobState::Running && s.progress > 0.0,
    );
    let exit = first
        .process
        .terminate(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", first.log_text());
    let status = rt
        .block_on(queue.job_status(&job.job_id))
        .expect("status")
        .expect("job");
    assert_eq!(status.state, JobState::Queued, "{}", first.log_text());
    assert!(
        first.leftover_job_dirs().is_empty(),
        "{:?}",
        first.leftover_job_dirs()
    );
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(keys::job_stream("normal"), keys::JOB_GROUP)
        .expect("XPENDING");
    assert_eq!(pending.count(), 1, "the abandoned entry stays pending");
    let dlq_len: usize = conn.xlen(keys::JOB_DLQ).expect("XLEN");
    assert_eq!(dlq_len, 0);
    assert!(rt
        .block_on(store.head(&keys::current_master("long")))
        .expect("head")
        .is_none());

    let second = stack.spawn(TranscoderOptions::new().name("tc-second").toml(timings));
    let status = wait_finished(&rt, &queue, &second, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{}", second.log_text());
    let variants = parse_master(&get_text(&rt, &store, &keys::current_master("long")));
    assert_eq!(variants.len(), 1);
    assert_eq!(variants[0].attrs["RESOLUTION"], "640x360");
    let playlist = parse_and_validate_media(&get_text(
        &rt,
        &store,
        &keys::rendition_file("long", 1, "360p", "index.m3u8"),
    ));
    assert_eq!(playlist.segments.len(), 5);
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(keys::job_stream("normal"), keys::JOB_GROUP)
        .expect("XPENDING");
    assert_eq!(pending.count(), 0, "acked after the reclaimed run");
}

/// An ffmpeg killed by a signal (here: the first run kills itself, as the OOM killer would)
/// is a transient failure: the attempt is retried in-process and the job still completes.
#[test]
fn ffmpeg_killed_by_a_signal_is_retried_and_the_job_completes() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(2)
        .audio(true)
        .write(stack.dir(), "short.mp4");
    let marker = stack.dir().join("killed-once");
    let wrapper = stack.dir().join("ffmpeg-dies-once");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ ! -e {m:?} ]; then touch {m:?}; kill -9 $$; fi\nexec ffmpeg \"$@\"\n",
            m = marker.display().to_string()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-retry")
            .ffmpeg_path(&wrapper)
            .toml("max_attempts = 2"),
    );
    let job = submit(&rt, &store, &queue, "retry", &clip);

    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{}", t.log_text());
    assert!(marker.exists(), "the first run was killed");
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 1.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_failed_total"), 0.0);
    let log = t.log_text();
    assert!(log.contains("killed by signal 9"), "{log}");
    let variants = parse_master(&get_text(&rt, &store, &keys::current_master("retry")));
    assert_eq!(variants.len(), 1);
    assert!(
        t.leftover_job_dirs().is_empty(),
        "{:?}",
        t.leftover_job_dirs()
    );
}

/// Published media carry nothing of the source but pictures and sound: a source tagged with a
/// GPS location, a comment, a title, a chapter, a subtitle track and a per-stream handler name
/// publishes an init segment and segments with none of them (not in the bytes, not in what
/// ffprobe reads from init + segment), and with exactly one video and one audio stream.
#[test]
fn published_media_carry_no_source_metadata() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(2)
        .audio(true)
        .write(stack.dir(), "plain.mp4");
    let meta = stack.dir().join("meta.txt");
    std::fs::write(
        &meta,
        ";FFMETADATA1\ntitle=rc-secret-title\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\n\
         title=rc-secret-chapter\n",
    )
    .expect("write");
    let subs = stack.dir().join("subs.srt");
    std::fs::write(
        &subs,
        "1\n00:00:00,000 --> 00:00:01,000\nrc-secret-subtitle\n",
    )
    .expect("write");
    let tagged = stack.dir().join("tagged.mp4");
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&clip)
        .arg("-i")
        .arg(&meta)
        .arg("-i")
        .arg(&subs)
        .args([
            "-map",
            "0",
            "-map",
            "2",
            "-map_metadata",
            "1",
            "-map_chapters",
            "1",
        ])
        .args(["-c", "copy", "-c:s", "mov_text"])
        .args(["-metadata", "location=+48.8584+002.2945/"])
        .args(["-metadata", "comment=rc-secret-comment"])
        .args(["-metadata:s:a:0", "handler_name=rc-secret-stream"])
        .arg(&tagged)
        .output()
        .expect("ffmpeg");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The source really carries all of it, so the checks below mean something.
    let (source_text, source_info) = ffprobe_json(&tagged);
    for secret in [
        "+48.8584+002.2945/",
        "rc-secret-comment",
        "rc-secret-title",
        "rc-secret-chapter",
        "rc-secret-stream",
    ] {
        assert!(source_text.contains(secret), "{secret}: {source_text}");
    }
    assert_eq!(
        stream_kinds(&source_info),
        ["video", "audio", "subtitle", "data"],
        "the chapter is a text track: {source_text}"
    );

    let t = stack.spawn(TranscoderOptions::new().name("tc-hygiene"));
    let job = submit(&rt, &store, &queue, "tagged", &tagged);
    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{}", t.log_text());

    let key = |f: &str| keys::rendition_file("tagged", 1, "360p", f);
    let get = |k: &str| {
        rt.block_on(store.get(k))
            .expect("get")
            .unwrap_or_else(|| panic!("{k} missing"))
            .to_vec()
    };
    let init = get(&key("init.mp4"));
    let playlist = parse_and_validate_media(&get_text(&rt, &store, &key("index.m3u8")));
    let segment = get(&key(&playlist.segments[0].uri));
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for (what, bytes) in [("init.mp4", &init), ("segment", &segment)] {
        for secret in ["rc-secret", "+48.8584", "002.2945"] {
            assert!(!contains(bytes, secret), "{what} contains {secret}");
        }
    }
    // MP4 stores the location as a binary `loci` box (the text above is not in the file), and
    // chapters as `chpl` or a text track.
    for box_type in ["loci", "chpl"] {
        assert!(
            !contains(&init, box_type),
            "init.mp4 has a {box_type:?} box"
        );
    }
    let joined = stack.dir().join("published.mp4");
    std::fs::write(&joined, [init.as_slice(), segment.as_slice()].concat()).expect("write");
    let (text, info) = ffprobe_json(&joined);
    for leak in ["rc-secret", "+48.8584"] {
        assert!(!text.contains(leak), "published media show {leak}: {text}");
    }
    let mut tags: Vec<&String> = Vec::new();
    for holder in
        std::iter::once(&info["format"]).chain(info["streams"].as_array().expect("streams"))
    {
        tags.extend(
            holder["tags"]
                .as_object()
                .into_iter()
                .flat_map(|t| t.keys()),
        );
    }
    assert!(
        !tags
            .iter()
            .any(|k| k.starts_with("location") || *k == "comment" || *k == "title"),
        "source tags published: {tags:?}"
    );
    assert_eq!(info["chapters"], serde_json::json!([]), "{text}");
    assert_eq!(stream_kinds(&info), ["video", "audio"], "{text}");
}

/// The `codec_type` of each stream in ffprobe's JSON.
fn stream_kinds(info: &serde_json::Value) -> Vec<String> {
    info["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// ffprobe's streams, format (with tags) and chapters of `file`: the JSON text and its value.
fn ffprobe_json(file: &std::path::Path) -> (String, serde_json::Value) {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_format",
            "-show_chapters",
            "-show_streams",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).expect("utf-8");
    let value = serde_json::from_str(&text).expect("ffprobe JSON");
    (text, value)
}

/// A random-looking suffix in the shape `WorkDir::create` uses (a simple UUID).
const LEFTOVER_SUFFIX: &str = "0123456789abcdef0123456789abcdef";

/// Job dirs a SIGKILLed transcoder left behind are removed before it takes jobs again (it is
/// ready only after the sweep); a foreign file, a foreign directory and a job-dir-named
/// symlink to a directory outside `work_dir` are left alone, and so is what the link points to.
#[test]
fn leftover_job_dirs_are_swept_at_start_up() {
    let stack = Stack::builder().redis().start();
    // The kit's work dir of a transcoder named `tc-sweep`.
    let work = stack.dir().join("tc-sweep-work");
    let outside = stack.dir().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir outside");
    std::fs::write(outside.join("precious"), b"keep me").expect("write");
    let vod = work.join(format!("job-a-{LEFTOVER_SUFFIX}"));
    let live = work.join(format!("live-job-b-{LEFTOVER_SUFFIX}"));
    std::fs::create_dir_all(live.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&vod).expect("mkdir");
    std::fs::write(vod.join("source"), vec![0u8; 4096]).expect("write");
    std::fs::write(live.join("sub/part"), vec![0u8; 100]).expect("write");
    std::os::unix::fs::symlink(&outside, vod.join("out")).expect("symlink");
    std::fs::write(work.join("notes.txt"), b"not ours").expect("write");
    std::fs::create_dir(work.join("other-tool")).expect("mkdir");
    let link = work.join(format!("job-c-{LEFTOVER_SUFFIX}"));
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");

    let t = stack.spawn(TranscoderOptions::new().name("tc-sweep"));
    assert_eq!(t.state_dir, work);
    assert!(
        !vod.exists() && !live.exists(),
        "{:?}",
        t.leftover_job_dirs()
    );
    assert!(work.join("notes.txt").is_file());
    assert!(work.join("other-tool").is_dir());
    assert!(std::fs::symlink_metadata(&link)
        .expect("link kept")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(outside.join("precious")).expect("outside untouched"),
        b"keep me"
    );
    let log = t.log_text();
    assert!(
        log.contains("removed job dirs left by an earlier process")
            && log.contains("dirs=2")
            && log.contains("bytes=4196"),
        "{log}"
    );
}

/// With less than `min_free_bytes` free under `work_dir` a job is not started: it stays queued
/// and claimed, is checked again and again (the deferral counter grows), and is neither failed
/// nor dead-lettered.
#[test]
fn a_job_is_not_started_while_work_dir_lacks_free_space() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(1)
        .write(stack.dir(), "small.mp4");
    let t = stack.spawn(TranscoderOptions::new().name("tc-full").toml(format!(
        "min_free_bytes = {}\nretry_backoff_ms = 100",
        u64::MAX / 2
    )));
    let job = submit(&rt, &store, &queue, "nospace", &clip);
    ringcast_testkit::wait_until(Duration::from_secs(30), "two deferrals", || {
        t.value("ringcast_transcoder_jobs_deferred_no_space_total") >= 2.0
    });
    assert_eq!(t.value("ringcast_transcoder_jobs_started_total"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_failed_total"), 0.0);
    let status = rt
        .block_on(queue.job_status(&job.job_id))
        .expect("job_status")
        .expect("job hash");
    assert_eq!(status.state, JobState::Queued, "{status:?}");
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let dlq_len: usize = conn.xlen(keys::JOB_DLQ).expect("XLEN");
    assert_eq!(dlq_len, 0);
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(keys::job_stream("normal"), keys::JOB_GROUP)
        .expect("XPENDING");
    assert_eq!(pending.count(), 1, "the job stays claimed, unacknowledged");
    assert!(t.log_text().contains("too little free space in work_dir"));
    assert!(
        t.leftover_job_dirs().is_empty(),
        "{:?}",
        t.leftover_job_dirs()
    );
}
