//! Fleet purges against a real redis-server: what the publisher sends the subscriber gets,
//! bounds are enforced on both sides, and the subscription survives Redis being killed and
//! restarted (reporting the resubscription, since messages published meanwhile are lost).

use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringcast_infra::purge::{
    publish, spawn_subscriber, PurgeError, PurgeEvent, PurgePublisher, PurgeSubscription,
    SubscriberSettings,
};
use ringcast_infra::queue::Queue;
use ringcast_proto::keys::PURGE_CHANNEL;
use ringcast_proto::purge::{PurgeMessage, PurgeMessageError, MAX_ITEMS};
use ringcast_testkit::{wait_until, RedisServer};

const WAIT: Duration = Duration::from_secs(10);

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Pings every 100 ms: a subscription that survives several of them answers them.
fn subscribe(url: &str) -> (PurgeSubscription, Receiver<PurgeEvent>) {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    let settings = SubscriberSettings {
        timeout: Duration::from_millis(500),
        ping_every: Duration::from_millis(100),
        ..SubscriberSettings::default()
    };
    let sub = spawn_subscriber(
        url,
        settings,
        Arc::new(move |e| {
            let _ = tx.lock().expect("lock").send(e);
        }),
    )
    .expect("valid URL");
    (sub, rx)
}

fn next(rx: &Receiver<PurgeEvent>) -> PurgeEvent {
    rx.recv_timeout(WAIT).expect("an event in time")
}

#[test]
fn published_messages_reach_subscribers_and_bad_ones_are_refused() {
    let redis = RedisServer::start();
    let (_sub, rx) = subscribe(&redis.url);
    assert_eq!(next(&rx), PurgeEvent::Subscribed { reconnect: false });
    let queue = block_on(Queue::connect(&redis.url)).expect("queue");
    // Several PINGs on the subscribed connection: answered, so nothing happens.
    assert!(
        rx.recv_timeout(Duration::from_millis(600)).is_err(),
        "the subscription must stay up across its PINGs"
    );

    let msg = PurgeMessage::video_deleted("abc");
    assert_eq!(block_on(publish(&queue, &msg)).expect("publish"), 1);
    assert_eq!(next(&rx), PurgeEvent::Message(msg));

    // The publisher refuses what an edge would refuse, before sending anything.
    let too_many = PurgeMessage::new(vec!["v/a/x".into(); MAX_ITEMS + 1], vec![], vec![]);
    let err = block_on(publish(&queue, &too_many)).expect_err("over the bound");
    assert!(matches!(
        err,
        PurgeError::Message(PurgeMessageError::TooManyItems(_))
    ));
    let empty = PurgeMessage::new(vec![], vec![], vec![]);
    assert!(block_on(publish(&queue, &empty)).is_err());
    // Something else on the channel reaches the subscriber as refused.
    let mut conn = redis::Client::open(redis.url.as_str())
        .expect("url")
        .get_connection()
        .expect("connect");
    let n: u64 = redis::cmd("PUBLISH")
        .arg(PURGE_CHANNEL)
        .arg(r#"{"v":9,"keys":["v/a/x"]}"#)
        .query(&mut conn)
        .expect("PUBLISH");
    assert_eq!(n, 1);
    assert_eq!(
        next(&rx),
        PurgeEvent::Rejected(PurgeMessageError::UnsupportedVersion(9))
    );
}

#[test]
fn the_subscription_comes_back_after_redis_does() {
    let mut redis = RedisServer::start();
    let (_sub, rx) = subscribe(&redis.url);
    assert_eq!(next(&rx), PurgeEvent::Subscribed { reconnect: false });
    let publisher = PurgePublisher::new(&redis.url, Duration::from_millis(500)).expect("url");

    redis.stop();
    assert_eq!(next(&rx), PurgeEvent::Disconnected);
    let msg = PurgeMessage::current_master("abc");
    assert!(
        block_on(publisher.publish(&msg)).is_err(),
        "no Redis, no publish"
    );

    redis.restart();
    assert_eq!(next(&rx), PurgeEvent::Subscribed { reconnect: true });
    // The publisher's connection comes back by itself too (a command or two later).
    wait_until(WAIT, "the publisher to reach Redis again", || {
        block_on(publisher.publish(&msg)).is_ok_and(|n| n == 1)
    });
    assert_eq!(next(&rx), PurgeEvent::Message(msg));
}

#[test]
fn a_hung_redis_is_noticed_by_its_pings() {
    let mut redis = RedisServer::start();
    let (_sub, rx) = subscribe(&redis.url);
    assert_eq!(next(&rx), PurgeEvent::Subscribed { reconnect: false });
    // The connection stays open but nothing answers: only the PING timeout can tell.
    redis.pause(true);
    assert_eq!(next(&rx), PurgeEvent::Disconnected);
    redis.pause(false);
    assert_eq!(next(&rx), PurgeEvent::Subscribed { reconnect: true });
}
