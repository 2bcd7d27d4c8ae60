//! The live events publisher and subscriber against a real redis-server: what the transcoder
//! writes is what the edge reads, and the stream names, MAXLEN, expiry and settings fields are
//! the ones both sides rely on. Expiries are read back with `TTL`, never waited out.

use std::time::Duration;

use redis::AsyncCommands;
use ringcast_infra::live_events::fields::{ENDED_FIELD, PLAYLIST_TYPE_FIELD, PUBLISHES_FIELD};
use ringcast_infra::live_events::{EventPublisher, EventSubscriber, StreamProbe, StreamTtl};
use ringcast_infra::queue::Queue;
use ringcast_proto::job::now_ms;
use ringcast_proto::live::LiveEvent;
use ringcast_testkit::RedisServer;

const TTL: StreamTtl = StreamTtl {
    ended_secs: 600,
    idle_secs: 86_400,
};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn part(msn: u64, part: u32) -> LiveEvent {
    LiveEvent::Part {
        msn,
        part,
        duration: 0.333,
        independent: part == 0,
    }
}

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn subscriber(redis: &RedisServer, video: &str, rendition: &str) -> EventSubscriber {
    let client = redis::Client::open(redis.url.as_str()).expect("client");
    EventSubscriber::connect(&client, Duration::from_secs(2), video, 1, rendition)
        .await
        .expect("subscriber")
}

#[test]
fn an_announced_event_reaches_a_blocked_subscriber() {
    let redis = RedisServer::start();
    block_on(async {
        let publisher = EventPublisher::connect(&redis.url, 1000, TTL)
            .await
            .expect("publisher");
        let mut sub = subscriber(&redis, "cam", "720p").await;
        assert_eq!(sub.stream_key(), "rc:events:cam:1:720p");
        assert_eq!(sub.probe().await.expect("probe"), StreamProbe::Missing);
        assert_eq!(sub.read("0-0", 10, None).await.expect("read"), vec![]);

        // A blocking read started before the announcement is woken by it.
        let start = LiveEvent::Start {
            target_duration: 2,
            part_target: 0.333,
            init: "init.mp4".into(),
            started_ms: 1_700_000_000_000,
            part_hold_back: None,
        };
        let (read, id) = tokio::join!(sub.read("0-0", 10, Some(Duration::from_secs(10))), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            publisher
                .announce("cam", 1, "720p", &start)
                .await
                .expect("announce")
        });
        let read = read.expect("blocking read");
        assert_eq!(read.len(), 1, "{read:?}");
        assert_eq!(read[0].id, id);
        let payload = read[0].event.as_deref().expect("`e` field");
        assert_eq!(LiveEvent::from_json(payload).expect("decode"), start);

        // Later reads go on after the last id; the whole stream re-reads in order.
        let second = publisher
            .announce("cam", 1, "720p", &part(0, 0))
            .await
            .expect("announce");
        let after = sub.read(&id, 10, None).await.expect("read");
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].id, second);
        let all = sub.read_all(100).await.expect("read_all");
        let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, [id.as_str(), second.as_str()]);
        assert_eq!(sub.probe().await.expect("probe"), StreamProbe::Live);

        // An entry without the event field is handed over as such (the edge counts it skipped).
        let mut conn = raw(&redis).await;
        let foreign: String = conn
            .xadd("rc:events:cam:1:720p", "*", &[("x", "1")])
            .await
            .expect("xadd");
        let rest = sub.read(&second, 10, None).await.expect("read");
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].id.as_str(), rest[0].event.as_deref()),
            (foreign.as_str(), None)
        );
    });
}

#[test]
fn streams_are_trimmed_to_about_maxlen() {
    let redis = RedisServer::start();
    block_on(async {
        let publisher = EventPublisher::connect(&redis.url, 10, TTL)
            .await
            .expect("publisher");
        for i in 0..500u32 {
            publisher
                .announce("cam", 1, "360p", &part(u64::from(i / 6), i % 6))
                .await
                .expect("announce");
        }
        let len: u64 = raw(&redis)
            .await
            .xlen("rc:events:cam:1:360p")
            .await
            .expect("xlen");
        // `MAXLEN ~` removes whole radix-tree nodes (100 entries by default): never below the
        // limit, never far above it.
        assert!(
            (10..=110).contains(&len),
            "XLEN {len} after 500 events, MAXLEN ~10"
        );
        let mut sub = subscriber(&redis, "cam", "360p").await;
        let all = sub.read_all(1000).await.expect("read_all");
        let last = LiveEvent::from_json(all.last().and_then(|e| e.event.as_deref()).expect("e"));
        assert_eq!(
            last.expect("decode"),
            part(83, 1),
            "the newest entries are kept"
        );
    });
}

#[test]
fn announcing_sets_the_idle_expiry_and_end_shortens_it() {
    let redis = RedisServer::start();
    block_on(async {
        let publisher = EventPublisher::connect(&redis.url, 1000, TTL)
            .await
            .expect("publisher");
        let mut conn = raw(&redis).await;
        let key = "rc:events:cam:1:720p";
        assert!(!publisher.started("cam", 1, "720p").await.expect("started"));

        publisher
            .announce("cam", 1, "720p", &part(0, 0))
            .await
            .expect("announce");
        let ttl: i64 = conn.ttl(key).await.expect("ttl");
        assert!((86_390..=86_400).contains(&ttl), "idle TTL {ttl}");
        assert!(publisher.started("cam", 1, "720p").await.expect("started"));
        let ended: Option<u64> = conn.hget("rc:live:cam:1", ENDED_FIELD).await.expect("hget");
        assert_eq!(ended, None, "only End records ended_ms");

        let before = now_ms();
        publisher
            .announce("cam", 1, "720p", &LiveEvent::End { last_msn: 0 })
            .await
            .expect("announce end");
        let pttl: i64 = conn.pttl(key).await.expect("pttl");
        assert!((590_000..=600_000).contains(&pttl), "ended PTTL {pttl}");
        let ended: Option<u64> = conn.hget("rc:live:cam:1", ENDED_FIELD).await.expect("hget");
        let ended = ended.expect("ended_ms set by End");
        assert!(ended >= before && ended <= now_ms() + 1, "ended_ms {ended}");

        // The stream may expire; `ended_ms` still says the stream ran.
        let () = conn.del(key).await.expect("del");
        assert!(publisher.started("cam", 1, "720p").await.expect("started"));
        assert!(!publisher.started("cam", 2, "720p").await.expect("started"));
    });
}

#[test]
fn publishes_defaults_to_one_until_the_ingest_counts_a_reconnect() {
    let redis = RedisServer::start();
    block_on(async {
        let publisher = EventPublisher::connect(&redis.url, 1000, TTL)
            .await
            .expect("publisher");
        assert_eq!(publisher.publishes("cam", 1).await.expect("publishes"), 1);
        // What the ingest records through the queue is what the transcoder reads.
        let queue = Queue::connect(&redis.url).await.expect("queue");
        queue.set_live_publishes("cam", 1, 3).await.expect("set");
        assert_eq!(publisher.publishes("cam", 1).await.expect("publishes"), 3);
        let mut conn = raw(&redis).await;
        let n: Option<u32> = conn
            .hget("rc:live:cam:1", PUBLISHES_FIELD)
            .await
            .expect("hget");
        assert_eq!(n, Some(3));
        assert_eq!(publisher.publishes("cam", 2).await.expect("publishes"), 1);
    });
}

#[test]
fn an_event_playlist_starts_from_fresh_streams_and_is_probed_as_such() {
    let redis = RedisServer::start();
    block_on(async {
        let publisher = EventPublisher::connect(&redis.url, 1000, TTL)
            .await
            .expect("publisher");
        let mut conn = raw(&redis).await;
        // An earlier attempt left streams (one ended) behind; another rendition is not ours.
        for r in ["720p", "360p", "other"] {
            publisher
                .announce("vod", 1, r, &part(0, 0))
                .await
                .expect("announce");
        }
        publisher
            .announce("vod", 1, "360p", &LiveEvent::End { last_msn: 0 })
            .await
            .expect("announce end");
        let mut sub = subscriber(&redis, "vod", "720p").await;
        assert_eq!(sub.probe().await.expect("probe"), StreamProbe::Live);

        publisher
            .begin_event_playlist("vod", 1, &["720p".to_owned(), "360p".to_owned()])
            .await
            .expect("begin");
        for (r, exists) in [("720p", false), ("360p", false), ("other", true)] {
            let n: u64 = conn
                .exists(format!("rc:events:vod:1:{r}"))
                .await
                .expect("exists");
            assert_eq!(n == 1, exists, "{r}");
        }
        let settings: std::collections::HashMap<String, String> =
            conn.hgetall("rc:live:vod:1").await.expect("hgetall");
        assert_eq!(
            settings.get(PLAYLIST_TYPE_FIELD).map(String::as_str),
            Some("event")
        );
        assert!(!settings.contains_key(ENDED_FIELD), "{settings:?}");
        assert!(!publisher.started("vod", 1, "720p").await.expect("started"));

        // No stream yet: the store serves; the first event makes it an EVENT playlist.
        assert_eq!(sub.probe().await.expect("probe"), StreamProbe::Missing);
        publisher
            .announce("vod", 1, "720p", &part(0, 0))
            .await
            .expect("announce");
        assert_eq!(
            sub.probe().await.expect("probe"),
            StreamProbe::EventPlaylist
        );
        // Another version of the same video is a live stream of its own.
        publisher
            .announce("vod", 2, "720p", &part(0, 0))
            .await
            .expect("announce");
        let client = redis::Client::open(redis.url.as_str()).expect("client");
        let mut v2 = EventSubscriber::connect(&client, Duration::from_secs(2), "vod", 2, "720p")
            .await
            .expect("subscriber");
        assert_eq!(v2.probe().await.expect("probe"), StreamProbe::Live);
    });
}

#[test]
fn the_job_traceparent_travels_beside_each_start_event_only() {
    let redis = RedisServer::start();
    block_on(async {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let publisher = EventPublisher::connect(&redis.url, 1000, TTL)
            .await
            .expect("publisher")
            .with_traceparent(Some(tp.to_string()));
        let start = LiveEvent::Start {
            target_duration: 2,
            part_target: 0.333,
            init: "init.mp4".into(),
            started_ms: 1_700_000_000_000,
            part_hold_back: None,
        };
        publisher
            .announce("traced", 1, "720p", &start)
            .await
            .expect("announce start");
        publisher
            .announce("traced", 1, "720p", &part(0, 0))
            .await
            .expect("announce part");
        let mut conn = raw(&redis).await;
        let entries: redis::streams::StreamRangeReply = conn
            .xrange_all("rc:events:traced:1:720p")
            .await
            .expect("XRANGE");
        let tps: Vec<Option<String>> = entries
            .ids
            .iter()
            .map(|e| e.get::<String>("traceparent"))
            .collect();
        assert_eq!(tps, vec![Some(tp.to_string()), None]);
        // The edge's reader still reads both events.
        let mut sub = subscriber(&redis, "traced", "720p").await;
        assert_eq!(sub.read("0-0", 10, None).await.expect("read").len(), 2);
    });
}
