//! The object store against a real S3 server (s3s-fs) and the job queue against a real
//! redis-server, both started on free loopback ports by the test kit.

use std::time::Duration;

use bytes::Bytes;
use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::{now_ms, JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
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

        let mut c = q.consumer("t1").await.expect("consumer");
        let order: Vec<String> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                let d = c
                    .next(Duration::from_millis(100))
                    .await
                    .expect("next")
                    .expect("job");
                v.push(d.job.as_ref().expect("decoded").job_id.clone());
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
