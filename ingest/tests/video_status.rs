//! `GET /v1/videos/{id}` once the latest job's hash has expired (the transcoder gives job
//! hashes a TTL when they end): the job's outcome still shows, from the copy kept in the video
//! hash.

mod support;

use std::time::Duration;

use ringcast_infra::queue::RetentionConfig;
use ringcast_proto::job::{now_ms, JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_testkit::wait_until;
use support::{block_on, options, queue, start};

#[test]
fn a_video_keeps_its_job_outcome_after_the_job_hash_expires() {
    let stack = start(options());
    // As the transcoder would: its job hashes expire a second after the job ends.
    let q = queue(stack.redis_url()).with_retention(RetentionConfig {
        job_ttl_secs: 1,
        ..RetentionConfig::default()
    });
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: "job-expiring".into(),
        video_id: "expiring".into(),
        version: 1,
        source_key: "sources/expiring/1/source".into(),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container: None,
    };
    block_on(async {
        q.enqueue(&job).await.expect("enqueue");
        q.set_state(&job, JobState::Failed, 0.0, Some("not a readable video"))
            .await
            .expect("failed");
    });
    let status = || -> serde_json::Value {
        let r = stack.ingest().get("/v1/videos/expiring");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).expect("json")
    };
    let before = status();
    assert_eq!(before["job"]["state"], "failed");
    wait_until(Duration::from_secs(10), "the job hash to expire", || {
        block_on(q.job_status("job-expiring"))
            .expect("status")
            .is_none()
    });
    let after = status();
    assert_eq!(
        after["job"], before["job"],
        "the job's status changed when its hash expired"
    );
    assert_eq!(after["job"]["error"], "not a readable video");
    assert_eq!(after["latest_version"], 1);
}
