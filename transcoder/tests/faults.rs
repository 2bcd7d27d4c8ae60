//! Redis failing under a running transcoder: it crashes and comes back empty (no persistence:
//! the job streams and the consumer group are gone). The transcoder must reconnect, make its
//! consumer group again and transcode a job queued afterwards, without a restart.

mod support;

use std::time::Duration;

use ringcast_proto::job::JobState;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{RedisServer, Stack, TranscoderOptions};
use support::*;

#[test]
fn a_transcoder_carries_on_after_redis_restarts_empty() {
    let mut redis = RedisServer::start();
    let stack = Stack::builder()
        .redis_at(&redis.url)
        .transcoder(TranscoderOptions::new().name("tc-redis"))
        .start();
    let clip = Clip::new(320, 240)
        .seconds(2)
        .write(stack.dir(), "after.mp4");
    // The workers are blocked in XREADGROUP when Redis dies.
    wait_until_blocked(&redis.url, 3);
    redis.stop();
    redis.restart();

    let (rt, store, queue) = clients(&stack);
    let job = submit(&rt, &store, &queue, "after-restart", &clip);
    let status = wait_for_job(
        &rt,
        &queue,
        stack.transcoder(),
        &job.job_id,
        Duration::from_secs(120),
        |s| matches!(s.state, JobState::Done | JobState::Failed),
    );
    assert_eq!(status.state, JobState::Done, "{:?}", status.error);
}

/// Wait until `n` clients are blocked (the transcoder's VOD worker and live slots).
fn wait_until_blocked(url: &str, n: usize) {
    let mut conn = redis::Client::open(url)
        .expect("client")
        .get_connection()
        .expect("connect");
    ringcast_testkit::wait_until(
        Duration::from_secs(20),
        "the transcoder's consumers to block in XREADGROUP",
        || {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut conn)
                .expect("INFO");
            info.lines()
                .filter_map(|l| l.trim().strip_prefix("blocked_clients:"))
                .any(|v| v.parse::<usize>().is_ok_and(|b| b >= n))
        },
    );
}
