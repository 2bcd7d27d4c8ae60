//! The object store against a real S3 server (s3s-fs) and the job queue against a real
//! redis-server, both started on free loopback ports by the test kit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_infra::queue::{live_streams, vod_streams, Consumer, Delivery, Queue, Reclaim};
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::{
    now_ms, JobState, LiveSource, Priority, TranscodeJob, JOB_SCHEMA_VERSION,
};
use ringcast_testkit::{RedisServer, S3Server};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn s3_backend_roundtrip_against_a_real_server() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let store = ObjectStore::open(&s3.store_config())
            .await
            .expect("open s3");
        // Opening twice must accept the existing bucket.
        let store2 = ObjectStore::open(&s3.store_config())
            .await
            .expect("reopen s3");
        assert_eq!(store.backend_name(), "s3");
        assert_eq!(store.get("v/x/1/missing.m4s").await.expect("get"), None);
        assert_eq!(store.head("v/x/1/missing.m4s").await.expect("head"), None);
        store
            .put(
                "v/x/1/index.m3u8",
                Bytes::from_static(b"#EXTM3U\n"),
                "application/vnd.apple.mpegurl",
            )
            .await
            .expect("put");
        assert_eq!(
            store2.get("v/x/1/index.m3u8").await.expect("get"),
            Some(Bytes::from_static(b"#EXTM3U\n"))
        );
        // A file larger than one multipart chunk (8 MiB in rust-s3) goes up in parts.
        let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let src = dir.path().join("big.bin");
        std::fs::write(&src, &big).expect("write");
        store
            .put_file("sources/x/1/source", &src, "application/octet-stream")
            .await
            .expect("put_file");
        let meta = store
            .head("sources/x/1/source")
            .await
            .expect("head")
            .expect("exists");
        assert_eq!(meta.size, big.len() as u64);
        let out = dir.path().join("out.bin");
        assert!(store
            .get_to_file("sources/x/1/source", &out)
            .await
            .expect("download"));
        assert!(
            std::fs::read(&out).expect("read") == big,
            "downloaded bytes differ"
        );
        assert!(!store
            .get_to_file("sources/x/1/nope", &dir.path().join("nope"))
            .await
            .expect("download missing"));
        store.delete("v/x/1/index.m3u8").await.expect("delete");
        assert_eq!(store.get("v/x/1/index.m3u8").await.expect("get"), None);
    });
}

fn job(id: &str, priority: Priority) -> TranscodeJob {
    TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: id.into(),
        video_id: format!("vid-{id}"),
        version: 1,
        source_key: format!("sources/vid-{id}/1/source"),
        priority,
        created_ms: now_ms(),
        live: None,
        container: None,
    }
}

#[test]
fn queue_delivers_by_priority_tracks_state_and_dead_letters() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        q.ping().await.expect("ping");
        q.enqueue(&job("low", Priority::Low))
            .await
            .expect("enqueue");
        q.enqueue(&job("normal", Priority::Normal))
            .await
            .expect("enqueue");
        q.enqueue(&job("high", Priority::High))
            .await
            .expect("enqueue");
        let st = q
            .job_status("normal")
            .await
            .expect("status")
            .expect("exists");
        assert_eq!(st.state, JobState::Queued);
        assert_eq!(
            q.video("vid-normal").await.expect("video")["latest_job"],
            "normal"
        );

        // As the transcoder runs it: reclaiming (nothing is idle yet, so the claim pass finds
        // nothing and priorities decide).
        let mut c = q
            .consumer("t1", vod_streams())
            .await
            .expect("consumer")
            .reclaiming(Reclaim {
                min_idle_ms: 60_000,
                max_deliveries: 3,
            });
        let order: Vec<String> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                let d = c
                    .next(Duration::from_millis(100))
                    .await
                    .expect("next")
                    .expect("job");
                v.push(d.job.as_ref().expect("decoded").job_id.clone());
                assert_eq!(d.times_delivered, 1);
                assert!(!c.is_poison(&d));
                c.ack(&d).await.expect("ack");
            }
            v
        };
        assert_eq!(order, ["high", "normal", "low"]);
        assert!(c
            .next(Duration::from_millis(50))
            .await
            .expect("next")
            .is_none());

        let j = job("normal", Priority::Normal);
        q.set_state(&j, JobState::Running, 42.0, None)
            .await
            .expect("state");
        let st = q
            .job_status("normal")
            .await
            .expect("status")
            .expect("exists");
        assert_eq!((st.state, st.progress), (JobState::Running, 42.0));
        q.set_state(&j, JobState::Done, 100.0, None)
            .await
            .expect("done");
        assert_eq!(
            q.video("vid-normal").await.expect("video")["current_version"],
            "1"
        );

        // A payload that is not a job is delivered as an error and can be dead-lettered.
        let client = redis::Client::open(redis.url.as_str()).expect("client");
        let mut conn = client.get_connection().expect("conn");
        redis::cmd("XADD")
            .arg("rc:jobs:normal")
            .arg("*")
            .arg("job")
            .arg("{not json")
            .query::<String>(&mut conn)
            .expect("xadd");
        let d = c
            .next(Duration::from_millis(500))
            .await
            .expect("next")
            .expect("entry");
        assert!(d.job.is_err());
        c.dead_letter(&d, "undecodable").await.expect("dlq");
        let dlq_len: u64 = redis::cmd("XLEN")
            .arg("rc:jobs:dlq")
            .query(&mut conn)
            .expect("xlen");
        assert_eq!(dlq_len, 1);
        // Nothing left pending: every delivered entry was acked (dead-lettering acks too).
        let (pending, _, _, _): (u64, redis::Value, redis::Value, redis::Value) =
            redis::cmd("XPENDING")
                .arg("rc:jobs:normal")
                .arg("transcoders")
                .query(&mut conn)
                .expect("xpending");
        assert_eq!(pending, 0);
    });
}

/// A connection with redis-rs's default 500 ms response timeout fails a longer blocking read
/// on the client; the consumer's waits for the whole block, and a job enqueued while it blocks
/// is delivered.
/// Live jobs go to `rc:jobs:live` whatever their priority; a VOD consumer never gets one (not
/// new, not reclaimed) and a live consumer never gets a VOD job.
#[test]
fn vod_and_live_consumers_take_only_their_own_jobs() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        let mut live = job("live", Priority::High);
        live.source_key = String::new();
        live.live = Some(LiveSource {
            pull_url: "http://127.0.0.1:1/live/k/pull?token=t".into(),
        });
        q.enqueue(&live).await.expect("enqueue live");
        q.enqueue(&job("vod", Priority::High))
            .await
            .expect("enqueue vod");
        // Reclaim everything at once: even an abandoned entry of the other lane stays out.
        let policy = Reclaim {
            min_idle_ms: 0,
            max_deliveries: 10,
        };
        let mut vod_c = q
            .consumer("vod", vod_streams())
            .await
            .expect("consumer")
            .reclaiming(policy);
        let mut live_c = q
            .consumer("live", live_streams())
            .await
            .expect("consumer")
            .reclaiming(policy);
        let block = Duration::from_millis(100);
        for _ in 0..3 {
            let d = vod_c.next(block).await.expect("next").expect("vod job");
            assert_eq!(d.stream, "rc:jobs:high");
            assert_eq!(d.job.as_ref().expect("decoded").job_id, "vod");
            let d = live_c.next(block).await.expect("next").expect("live job");
            assert_eq!(d.stream, "rc:jobs:live");
            assert_eq!(d.job.as_ref().expect("decoded").job_id, "live");
        }
    });
}

#[test]
fn blocking_read_waits_its_whole_block_and_gets_a_job_enqueued_meanwhile() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        let mut c = q
            .consumer("blocker", vod_streams())
            .await
            .expect("consumer");
        let started = Instant::now();
        let got = c
            .next(Duration::from_millis(1200))
            .await
            .expect("a long empty read is no error");
        assert!(got.is_none());
        assert!(started.elapsed() >= Duration::from_millis(1200));

        let reader = tokio::spawn(async move { c.next(Duration::from_secs(20)).await });
        let mut conn = redis_conn(&redis.url);
        wait_for("the consumer to block in XREADGROUP", || {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut conn)
                .expect("INFO");
            info.lines().any(|l| l.trim() == "blocked_clients:1")
        })
        .await;
        q.enqueue(&job("late", Priority::Low))
            .await
            .expect("enqueue");
        let d = reader
            .await
            .expect("task")
            .expect("next")
            .expect("the late job");
        assert_eq!(d.job.expect("decoded").job_id, "late");
    });
}

/// Redis loses its data (a restart without persistence, a failover to an empty replica) while a
/// transcoder runs: the consumer group is gone, and the consumer must make it again and take
/// the jobs queued since, not fail with NOGROUP until someone restarts it.
#[test]
fn a_consumer_recreates_its_group_after_redis_lost_its_data() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        let mut c = q
            .consumer("survivor", vod_streams())
            .await
            .expect("consumer");
        let mut conn = redis_conn(&redis.url);
        let _: () = redis::cmd("FLUSHALL").query(&mut conn).expect("FLUSHALL");
        q.enqueue(&job("after-loss", Priority::Normal))
            .await
            .expect("enqueue");
        let d = c
            .next(Duration::from_secs(2))
            .await
            .expect("no NOGROUP error")
            .expect("the job queued after the loss");
        assert_eq!(d.job.as_ref().expect("decoded").job_id, "after-loss");
        c.ack(&d).await.expect("ack");
    });
}

/// An entry its consumer abandoned (no ack) is claimed by another once idle, with its delivery
/// count; past `max_deliveries` it is poison and dead-lettered.
#[test]
fn abandoned_jobs_are_reclaimed_and_dead_lettered_past_max_deliveries() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        q.enqueue(&job("stuck", Priority::Normal))
            .await
            .expect("enqueue");
        let policy = Reclaim {
            min_idle_ms: 100,
            max_deliveries: 2,
        };
        let consumer = |name: &'static str| {
            let q = q.clone();
            async move {
                q.consumer(name, vod_streams())
                    .await
                    .expect("consumer")
                    .reclaiming(policy)
            }
        };
        let mut a = consumer("a").await;
        let first = a
            .next(Duration::from_millis(100))
            .await
            .expect("next")
            .expect("job");
        assert_eq!((first.times_delivered, a.is_poison(&first)), (1, false));
        // `a` dies with the job: `b` takes it over once it has been idle for min_idle_ms.
        let mut b = consumer("b").await;
        let second = next_within(&mut b, Duration::from_secs(10)).await;
        assert_eq!(second.entry_id, first.entry_id);
        assert_eq!(second.job.as_ref().expect("decoded").job_id, "stuck");
        assert_eq!((second.times_delivered, b.is_poison(&second)), (2, false));
        // `b` dies too: the third delivery is one too many.
        let mut c = consumer("c").await;
        let third = next_within(&mut c, Duration::from_secs(10)).await;
        assert_eq!(third.entry_id, first.entry_id);
        assert_eq!((third.times_delivered, c.is_poison(&third)), (3, true));
        c.dead_letter(&third, "delivered 3 times without finishing")
            .await
            .expect("dead-letter");

        let mut conn = redis_conn(&redis.url);
        let dlq: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg("rc:jobs:dlq")
            .arg("-")
            .arg("+")
            .query(&mut conn)
            .expect("XRANGE");
        assert_eq!(dlq.ids.len(), 1);
        let reason: String = dlq.ids[0].get("reason").expect("reason");
        assert_eq!(reason, "delivered 3 times without finishing");
        let payload: String = dlq.ids[0].get("job").expect("job");
        assert_eq!(
            TranscodeJob::from_json(&payload).expect("job").job_id,
            "stuck"
        );
        assert_eq!(pending(&mut conn, "rc:jobs:normal"), 0);
    });
}

/// While its consumer keeps it claimed, a running job is not reclaimed however long it runs;
/// once the heartbeat stops, it is.
#[test]
fn a_claimed_job_is_not_reclaimed_until_its_heartbeat_stops() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        q.enqueue(&job("long", Priority::High))
            .await
            .expect("enqueue");
        let policy = Reclaim {
            min_idle_ms: 500,
            max_deliveries: 5,
        };
        let mut a = q
            .consumer("a", vod_streams())
            .await
            .expect("consumer")
            .reclaiming(policy);
        let mut b = q
            .consumer("b", vod_streams())
            .await
            .expect("consumer")
            .reclaiming(policy);
        let d = a
            .next(Duration::from_millis(100))
            .await
            .expect("next")
            .expect("job");
        let heartbeat = a.keep_claimed(&d, Duration::from_millis(50));
        // Three times the idle limit: without the heartbeat `b` would have claimed it.
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            let got = b.next(Duration::from_millis(100)).await.expect("next");
            assert!(got.is_none(), "reclaimed while claimed: {got:?}");
        }
        drop(heartbeat);
        let taken = next_within(&mut b, Duration::from_secs(10)).await;
        assert_eq!(
            (taken.entry_id.as_str(), taken.times_delivered),
            (d.entry_id.as_str(), 2)
        );
        // A touch by the consumer that holds it also resets the idle time.
        let mut conn = redis_conn(&redis.url);
        wait_for("the entry to be idle past min_idle_ms", || {
            idle_ms(&mut conn, "rc:jobs:high") >= 500
        })
        .await;
        assert!(b.touch(&taken).await.expect("touch"), "b owns the entry");
        assert!(idle_ms(&mut conn, "rc:jobs:high") < 500);
        b.ack(&taken).await.expect("ack");
        assert_eq!(pending(&mut conn, "rc:jobs:high"), 0);
    });
}

/// A worker that stalled past `min_idle_ms` (its heartbeat did not run) has its job reclaimed
/// by another; when its heartbeat runs again it must not take the job back (two workers would
/// run it), but report the loss. Nor may a plain touch steal it.
#[test]
fn a_stalled_heartbeat_does_not_take_back_a_reclaimed_job() {
    let redis = RedisServer::start();
    block_on(async {
        let q = Queue::connect(&redis.url).await.expect("connect");
        q.enqueue(&job("contested", Priority::Normal))
            .await
            .expect("enqueue");
        let policy = Reclaim {
            min_idle_ms: 300,
            max_deliveries: 5,
        };
        let mut a = q
            .consumer("a", vod_streams())
            .await
            .expect("consumer")
            .reclaiming(policy);
        let mut b = q
            .consumer("b", vod_streams())
            .await
            .expect("consumer")
            .reclaiming(policy);
        let d = a
            .next(Duration::from_millis(100))
            .await
            .expect("next")
            .expect("job");
        // `a` stalls: its first heartbeat comes long after min_idle_ms.
        let heartbeat = a.keep_claimed(&d, Duration::from_millis(1500));
        let taken = next_within(&mut b, Duration::from_secs(10)).await;
        assert_eq!(taken.entry_id, d.entry_id);
        let mut conn = redis_conn(&redis.url);
        assert_eq!(owner(&mut conn, "rc:jobs:normal"), "b");
        assert!(!heartbeat.is_lost(), "not known before a's heartbeat runs");
        tokio::time::timeout(Duration::from_secs(10), heartbeat.lost())
            .await
            .expect("a's heartbeat reports the lost claim");
        assert_eq!(
            owner(&mut conn, "rc:jobs:normal"),
            "b",
            "a took the job back"
        );
        assert!(!a.touch(&d).await.expect("touch"), "a no longer owns it");
        assert_eq!(
            owner(&mut conn, "rc:jobs:normal"),
            "b",
            "a's touch took the job back"
        );
        // `b` still refreshes its claim, and acks.
        assert!(b.touch(&taken).await.expect("touch"));
        b.ack(&taken).await.expect("ack");
        assert!(
            !b.touch(&taken).await.expect("touch"),
            "acked: nothing to touch"
        );
        assert_eq!(pending(&mut conn, "rc:jobs:normal"), 0);
    });
}

/// Owner of the only pending entry on `stream`.
fn owner(conn: &mut redis::Connection, stream: &str) -> String {
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg("transcoders")
        .arg("-")
        .arg("+")
        .arg(10)
        .query(conn)
        .expect("XPENDING");
    assert_eq!(reply.ids.len(), 1, "one pending entry");
    reply.ids[0].consumer.clone()
}

/// The next delivery of `c`, polling until `within` has passed.
async fn next_within(c: &mut Consumer, within: Duration) -> Delivery {
    let until = Instant::now() + within;
    loop {
        if let Some(d) = c.next(Duration::from_millis(50)).await.expect("next") {
            return d;
        }
        assert!(
            Instant::now() < until,
            "nothing delivered within {within:?}"
        );
    }
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("client")
        .get_connection()
        .expect("conn")
}

/// Pending entries of the group on `stream`.
fn pending(conn: &mut redis::Connection, stream: &str) -> u64 {
    let (n, _, _, _): (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(stream)
        .arg("transcoders")
        .query(conn)
        .expect("XPENDING");
    n
}

/// Idle time of the only pending entry on `stream`.
fn idle_ms(conn: &mut redis::Connection, stream: &str) -> u64 {
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg("transcoders")
        .arg("-")
        .arg("+")
        .arg(1)
        .query(conn)
        .expect("XPENDING");
    reply
        .ids
        .first()
        .expect("a pending entry")
        .last_delivered_ms as u64
}

/// Poll `ready` every few milliseconds until it holds; fail after 10 s. Yields between polls,
/// so tasks of the test's runtime keep running.
async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Services start together and each creates the bucket: every open must succeed even when the
/// creates race (s3s-fs answers a racing create with 500, not 409).
#[test]
fn concurrent_opens_of_a_new_bucket_all_succeed() {
    let s3 = S3Server::start();
    let cfg = ringcast_infra::config::StoreConfig {
        bucket: "raced-bucket".into(),
        ..s3.store_config()
    };
    block_on(async {
        let mut opens = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let cfg = cfg.clone();
            opens.spawn(async move { ObjectStore::open(&cfg).await.map(|_| ()) });
        }
        while let Some(res) = opens.join_next().await {
            res.expect("task")
                .expect("open while others create the same bucket");
        }
        let store = ObjectStore::open(&cfg).await.expect("open");
        store
            .put(
                "v/x/1/a.m4s",
                Bytes::from_static(b"abc"),
                "video/iso.segment",
            )
            .await
            .expect("put into the raced bucket");
    });
}

/// `delete_prefix` removes a folder's objects and nothing beside it (`v/a/` leaves `v/ab/`),
/// on both backends; the filesystem one leaves no empty folder behind.
fn delete_prefix_removes_one_folder(store: &ObjectStore) {
    block_on(async {
        let keys = [
            "v/a/master.m3u8",
            "v/a/1/master.m3u8",
            "v/a/1/720p/seg1.m4s",
            "v/a/2/poster.jpg",
            "v/ab/master.m3u8",
            "v/ab/1/720p/seg1.m4s",
            "sources/a/1/source",
        ];
        for k in keys {
            store
                .put(k, Bytes::from_static(b"x"), "application/octet-stream")
                .await
                .expect("put");
        }
        assert_eq!(store.delete_prefix("v/a/").await.expect("delete"), 4);
        assert_eq!(
            store.list("v/a/").await.expect("list"),
            Vec::<String>::new()
        );
        assert_eq!(
            store.list("v/").await.expect("list"),
            vec!["v/ab/1/720p/seg1.m4s", "v/ab/master.m3u8"]
        );
        assert!(store
            .get("sources/a/1/source")
            .await
            .expect("get")
            .is_some());
        // Nothing left: nothing to do.
        assert_eq!(store.delete_prefix("v/a/").await.expect("again"), 0);
        // Only folder prefixes, never one that could cut into a sibling's name.
        assert!(store.delete_prefix("v/a").await.is_err());
        assert!(store.delete_prefix("../").await.is_err());
        store
            .delete_many(vec!["v/ab/master.m3u8".into(), "v/ab/none".into()])
            .await
            .expect("delete many");
        assert_eq!(
            store.list("v/").await.expect("list"),
            vec!["v/ab/1/720p/seg1.m4s"]
        );
    });
}

#[test]
fn delete_prefix_on_the_s3_server() {
    let s3 = S3Server::start();
    let store = block_on(ObjectStore::open(&s3.store_config())).expect("open s3");
    delete_prefix_removes_one_folder(&store);
}

#[test]
fn delete_prefix_on_the_filesystem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ringcast_infra::config::StoreConfig {
        root: dir.path().to_path_buf(),
        ..Default::default()
    };
    let store = block_on(ObjectStore::open(&cfg)).expect("open fs");
    delete_prefix_removes_one_folder(&store);
    assert!(!dir.path().join("v/a").exists(), "empty folders removed");
    assert!(dir.path().join("v/ab/1/720p").is_dir());
}
