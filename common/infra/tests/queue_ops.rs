//! Queue operations against a real redis-server: what `/metrics` reads ([`Queue::stats`]),
//! what the operator CLI does (requeue, drop, cancel) and what the queue keeps (stream
//! trimming, job hash TTL, dead-letter cap).

use std::time::Duration;

use ringcast_infra::queue::admin::{AdminError, CancelRequest, DeadLetterRef};
use ringcast_infra::queue::{vod_streams, Queue, RetentionConfig};
use ringcast_proto::job::{now_ms, JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_testkit::RedisServer;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn job(id: &str, version: u32) -> TranscodeJob {
    TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: id.into(),
        video_id: format!("vid-{id}"),
        version,
        source_key: format!("sources/vid-{id}/{version}/source"),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container: None,
    }
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("client")
        .get_connection()
        .expect("conn")
}

/// Small stream nodes, so that approximate (`~`) trims act on a few dozen entries as they do
/// on thousands with the default 100 entries per node.
fn small_stream_nodes(conn: &mut redis::Connection) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg(5)
        .query::<()>(conn)
        .expect("CONFIG SET");
}

fn ids(conn: &mut redis::Connection, stream: &str) -> Vec<String> {
    let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .expect("XRANGE");
    r.ids.into_iter().map(|e| e.id).collect()
}

fn ttl(conn: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query(conn).expect("TTL")
}

/// Trimming removes acknowledged entries only: never one still waiting for a worker, never
/// one pending (running, or held by a dead worker), and not before `keep_acked_secs`.
#[test]
fn trimming_never_drops_waiting_or_pending_jobs() {
    let redis = RedisServer::start();
    let mut conn = redis_conn(&redis.url);
    small_stream_nodes(&mut conn);
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        let mut entries = Vec::new();
        for i in 0..40 {
            entries.push(q.enqueue(&job(&format!("j{i}"), 1)).await.expect("enqueue"));
        }
        let mut c = q.consumer("w", vod_streams()).await.expect("consumer");
        let mut delivered = Vec::new();
        for _ in 0..30 {
            let d = c
                .next(Duration::from_millis(100))
                .await
                .expect("next")
                .expect("job");
            delivered.push(d);
        }
        // #3 and #20 keep running; the other delivered ones are done.
        for (i, d) in delivered.iter().enumerate() {
            if i != 3 && i != 20 {
                c.ack(d).await.expect("ack");
            }
        }
        let stats = q.stats().await.expect("stats");
        let normal = stats
            .streams
            .iter()
            .find(|s| s.stream == "rc:jobs:normal")
            .expect("normal");
        assert_eq!((normal.waiting, normal.pending), (10, 2));
        assert_eq!(
            normal.oldest_waiting.map(|i| i.to_string()),
            Some(entries[30].clone())
        );

        // Acknowledged entries younger than keep_acked_secs stay.
        let keep = q.clone().with_retention(RetentionConfig::default());
        let t = keep.trim_streams().await.expect("trim");
        assert!(t.iter().all(|t| t.removed == 0), "{t:?}");
        assert_eq!(ids(&mut conn, "rc:jobs:normal").len(), 40);

        let eager = q.clone().with_retention(RetentionConfig {
            keep_acked_secs: 0,
            ..RetentionConfig::default()
        });
        // The running #3 holds everything from it on.
        eager.trim_streams().await.expect("trim");
        let left = ids(&mut conn, "rc:jobs:normal");
        for e in &entries[3..] {
            assert!(left.contains(e), "{e} trimmed while pending or waiting");
        }
        // #3 ends: now #20 is the oldest that must stay.
        c.ack(&delivered[3]).await.expect("ack");
        let t = eager.trim_streams().await.expect("trim");
        let removed: u64 = t.iter().map(|t| t.removed).sum();
        let left = ids(&mut conn, "rc:jobs:normal");
        assert!(removed >= 15, "acknowledged entries were trimmed: {t:?}");
        assert_eq!(left.len() as u64, 40 - removed);
        for e in &entries[20..] {
            assert!(left.contains(e), "{e} trimmed while pending or waiting");
        }
        // The waiting jobs are still delivered, in order.
        let d = c
            .next(Duration::from_millis(100))
            .await
            .expect("next")
            .expect("job");
        assert_eq!(d.entry_id, entries[30]);
    });
}

/// An ended job's hash expires after `job_ttl_secs`; its outcome is copied into the video hash
/// while it is the video's latest job. A running job's hash does not expire.
#[test]
fn ended_jobs_get_a_ttl_and_leave_their_outcome_on_the_video() {
    let redis = RedisServer::start();
    let mut conn = redis_conn(&redis.url);
    block_on(async {
        let q = Queue::connect(&redis.url)
            .await
            .expect("connect")
            .with_retention(RetentionConfig {
                job_ttl_secs: 100,
                ..RetentionConfig::default()
            });
        let j = job("a", 1);
        q.enqueue(&j).await.expect("enqueue");
        q.set_state(&j, JobState::Running, 10.0, None)
            .await
            .expect("running");
        assert_eq!(ttl(&mut conn, "rc:job:a"), -1, "no TTL while running");
        q.set_state(&j, JobState::Failed, 12.0, Some("not a readable video"))
            .await
            .expect("failed");
        let t = ttl(&mut conn, "rc:job:a");
        assert!((1..=100).contains(&t), "TTL {t}");
        let video = q.video("vid-a").await.expect("video");
        assert_eq!(video["ended_job"], "a");
        assert_eq!(video["ended_state"], "failed");
        assert_eq!(video["ended_error"], "not a readable video");

        // A newer version is queued; the old job ending late does not overwrite its record.
        let newer = TranscodeJob {
            job_id: "b".into(),
            version: 2,
            ..job("a", 2)
        };
        q.enqueue(&newer).await.expect("enqueue");
        q.set_state(&newer, JobState::Done, 100.0, None)
            .await
            .expect("done");
        q.set_state(&j, JobState::Failed, 12.0, Some("late"))
            .await
            .expect("failed");
        let video = q.video("vid-a").await.expect("video");
        assert_eq!(
            (video["ended_job"].as_str(), video["ended_state"].as_str()),
            ("b", "done")
        );
        assert!(!video.contains_key("ended_error"));
        assert_eq!(video["current_version"], "2");
        // The job hash expiring leaves the video's record (what GET /v1/videos/{id} falls
        // back to).
        redis::cmd("DEL")
            .arg("rc:job:b")
            .query::<()>(&mut conn)
            .expect("DEL");
        assert_eq!(q.job_status("b").await.expect("status"), None);
        assert_eq!(
            q.video("vid-a").await.expect("video")["ended_state"],
            "done"
        );
    });
}

/// Dead letters: capped near `dlq_maxlen`; requeue puts a job back with a fresh delivery
/// count and no TTL; a newer version blocks it unless forced; drop deletes it; cancel sets the
/// flag on a live job and refuses unknown and ended ones.
#[test]
fn dead_letters_are_capped_requeued_dropped_and_jobs_cancelled() {
    let redis = RedisServer::start();
    let mut conn = redis_conn(&redis.url);
    small_stream_nodes(&mut conn);
    block_on(async {
        let q = Queue::connect(&redis.url)
            .await
            .expect("connect")
            .with_retention(RetentionConfig {
                dlq_maxlen: 5,
                ..RetentionConfig::default()
            });
        let mut c = q.consumer("w", vod_streams()).await.expect("consumer");
        for i in 0..30 {
            let j = job(&format!("d{i}"), 1);
            q.enqueue(&j).await.expect("enqueue");
            let d = c
                .next(Duration::from_millis(100))
                .await
                .expect("next")
                .expect("job");
            q.set_state(&j, JobState::Failed, 0.0, Some("bad input"))
                .await
                .expect("failed");
            c.dead_letter(&d, "bad input").await.expect("dead-letter");
        }
        let len = q.stats().await.expect("stats").dead_letters;
        assert!(
            (5..=10).contains(&len),
            "DLQ length {len} not near dlq_maxlen 5"
        );

        // The newest dead letter, by job id.
        let r = DeadLetterRef::parse("d29").expect("ref");
        let req = q.requeue(&r, false).await.expect("requeue");
        assert_eq!(req.stream, "rc:jobs:normal");
        assert_eq!(q.stats().await.expect("stats").dead_letters, len - 1);
        assert_eq!(
            q.job_status("d29")
                .await
                .expect("status")
                .expect("hash")
                .state,
            JobState::Queued
        );
        assert_eq!(ttl(&mut conn, "rc:job:d29"), -1, "requeued: TTL removed");
        let d = c
            .next(Duration::from_millis(100))
            .await
            .expect("next")
            .expect("requeued job");
        assert_eq!(d.entry_id, req.entry_id);
        assert_eq!(d.times_delivered, 1);
        assert!(matches!(
            q.requeue(&r, false).await,
            Err(AdminError::NotFound(_))
        ));

        // A video with a newer version: requeueing the old one needs --force.
        let newer = TranscodeJob {
            job_id: "d28-v2".into(),
            ..job("d28", 2)
        };
        q.enqueue(&newer).await.expect("enqueue");
        let old = DeadLetterRef::parse("d28").expect("ref");
        assert!(matches!(
            q.requeue(&old, false).await,
            Err(AdminError::Refused(_))
        ));
        // Drop by entry id.
        let entry = q.find_dead_letters(&old).await.expect("found")[0]
            .entry_id
            .clone();
        let dropped = q
            .drop_dead_letter(&DeadLetterRef::parse(&entry).expect("ref"))
            .await
            .expect("drop");
        assert_eq!(dropped, [entry]);
        assert!(q.find_dead_letters(&old).await.is_err());
        let hash = q.job_hash("d28").await.expect("hash").expect("exists");
        assert_eq!(hash.0["state"], "failed");
        assert!(hash.0.contains_key("dropped_ms"));
        assert!(hash.1.is_some(), "dropped job has a TTL");

        // Cancel.
        assert_eq!(
            q.request_cancel("d28-v2").await.expect("cancel"),
            CancelRequest::Requested
        );
        let hash = q.job_hash("d28-v2").await.expect("hash").expect("exists");
        assert_eq!(hash.0["cancel_requested"], "1");
        assert_eq!(
            q.request_cancel("d27").await.expect("cancel"),
            CancelRequest::AlreadyEnded("failed".into())
        );
        assert!(matches!(
            q.request_cancel("nope").await,
            Err(AdminError::NotFound(_))
        ));
    });
}
