//! The videos' Redis side against a real redis-server: listing pages (newest first, ties by id,
//! cursors that survive inserts and deletes), batched reads, updates that never re-create a
//! deleted video, and the removal of every key of a video.

use std::collections::HashSet;

use redis::Commands;
use ringcast_infra::platform::videos::{Deleted, Videos};
use ringcast_infra::queue::Queue;
use ringcast_proto::keys;
use ringcast_proto::videos::Cursor;
use ringcast_testkit::RedisServer;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn setup() -> (RedisServer, Videos, redis::Connection) {
    let redis = RedisServer::start();
    let q = block_on(Queue::connect(&redis.url)).expect("connect");
    let conn = redis::Client::open(redis.url.as_str())
        .expect("client")
        .get_connection()
        .expect("conn");
    (redis, Videos::new(&q), conn)
}

/// Every id of the listing, page by page, following the cursors.
fn walk(videos: &Videos, owner: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let (items, more) = block_on(videos.page(owner, cursor.as_ref(), limit)).expect("page");
        assert!(items.len() <= limit);
        out.extend(items.iter().map(|(id, _)| id.clone()));
        match (more, items.last()) {
            (true, Some((id, score))) => {
                cursor = Some(Cursor {
                    score: *score,
                    id: id.clone(),
                })
            }
            _ => return out,
        }
    }
}

#[test]
fn pages_are_newest_first_with_ties_broken_by_id() {
    let (_redis, videos, _conn) = setup();
    // Three share a timestamp (a bulk import): their order is by id, descending.
    let seed = [
        ("v1", 100),
        ("v2", 200),
        ("tieA", 300),
        ("tieC", 300),
        ("tieB", 300),
        ("v3", 400),
        ("other", 500),
    ];
    let rows = seed
        .iter()
        .map(|(id, ms)| {
            let owner = if *id == "other" { "bob" } else { "alice" };
            (id.to_string(), owner.to_string(), String::new(), *ms)
        })
        .collect();
    block_on(videos.register_many(rows)).expect("seed");
    let want = ["v3", "tieC", "tieB", "tieA", "v2", "v1"];
    for limit in 1..=7 {
        assert_eq!(walk(&videos, "alice", limit), want, "limit {limit}");
    }
    let (first, more) = block_on(videos.page("alice", None, 2)).expect("page");
    assert_eq!(first, vec![("v3".into(), 400), ("tieC".into(), 300)]);
    assert!(more);
    let (_, more) = block_on(videos.page("alice", None, 6)).expect("page");
    assert!(!more, "exactly the whole listing: no further page");
    assert_eq!(walk(&videos, "nobody", 5), Vec::<String>::new());
}

#[test]
fn a_cursor_stays_right_when_videos_come_and_go_between_pages() {
    let (_redis, videos, mut conn) = setup();
    let rows = (0..50u64)
        .map(|i| {
            (
                format!("vid{i:02}"),
                "alice".into(),
                String::new(),
                1000 + i,
            )
        })
        .collect();
    block_on(videos.register_many(rows)).expect("seed");
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut round = 0u64;
    loop {
        let (items, more) = block_on(videos.page("alice", cursor.as_ref(), 7)).expect("page");
        seen.extend(items.iter().map(|(id, _)| id.clone()));
        // Between pages: a newer video arrives, and the item the cursor names is deleted.
        round += 1;
        block_on(videos.register_many(vec![(
            format!("new{round}"),
            "alice".into(),
            String::new(),
            5000 + round,
        )]))
        .expect("insert");
        let Some((id, score)) = items.last().cloned() else {
            break;
        };
        let _: i64 = conn.zrem(keys::owner_videos("alice"), &id).expect("zrem");
        if !more {
            break;
        }
        cursor = Some(Cursor { score, id });
    }
    let want: Vec<String> = (0..50u64).rev().map(|i| format!("vid{i:02}")).collect();
    assert_eq!(
        seen, want,
        "no duplicate, no gap, no newcomer in the middle"
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

#[test]
fn updates_batched_reads_and_deletes() {
    let (_redis, videos, mut conn) = setup();
    block_on(videos.register_many(vec![
        ("a".into(), "alice".into(), "First".into(), 10),
        ("b".into(), "alice".into(), String::new(), 20),
    ]))
    .expect("seed");
    assert!(block_on(videos.update("a", &[("title", "New".into())], 99)).expect("update"));
    assert!(
        !block_on(videos.update("gone", &[("title", "x".into())], 99)).expect("update"),
        "an update never creates a video"
    );
    assert!(!conn.exists::<_, bool>(keys::video("gone")).expect("exists"));
    block_on(videos.record_duration("a", 1, 12_345)).expect("duration");
    let hashes = block_on(videos.hashes(&["a".into(), "nope".into(), "b".into()])).expect("hashes");
    assert_eq!(hashes[0]["title"], "New");
    assert_eq!(hashes[0]["updated_ms"], "99");
    assert_eq!(hashes[0]["created_ms"], "10");
    assert_eq!(hashes[0][&keys::duration_field(1)], "12345");
    assert!(hashes[1].is_empty());
    assert_eq!(hashes[2]["owner"], "alice");
    assert_eq!(
        block_on(videos.job_statuses(&["nojob".into()])).expect("jobs"),
        vec![None]
    );

    // Every key of `a` goes: hash, listing entry, versions, live bookkeeping, its dedup entry.
    let sha = "ab".repeat(32);
    let _: () = conn
        .hset(keys::video("a"), "source_sha256", &sha)
        .expect("hset");
    let _: () = conn
        .hset(keys::video("a"), "latest_version", 2)
        .expect("hset");
    let _: () = conn.set(keys::sha256("alice", &sha), "a").expect("set");
    let _: () = conn
        .hset(keys::video_versions("a"), "1", "{}")
        .expect("hset");
    let _: () = conn
        .hset(keys::live_stream("a", 2), "publishes", 1)
        .expect("hset");
    // Another owner's dedup entry for the same bytes stays.
    let _: () = conn.set(keys::sha256("bob", &sha), "z").expect("set");
    assert_eq!(
        block_on(videos.delete("a", "bob", 2, Some(&sha))).expect("delete"),
        Deleted::OtherOwner
    );
    assert!(conn.exists::<_, bool>(keys::video("a")).expect("exists"));
    assert_eq!(
        block_on(videos.delete("a", "alice", 2, Some(&sha))).expect("delete"),
        Deleted::Now
    );
    for k in [
        keys::video("a"),
        keys::sha256("alice", &sha),
        keys::video_versions("a"),
        keys::live_stream("a", 2),
    ] {
        assert!(!conn.exists::<_, bool>(&k).expect("exists"), "{k} left");
    }
    let left: Vec<String> = conn
        .zrange(keys::owner_videos("alice"), 0, -1)
        .expect("zrange");
    assert_eq!(left, vec!["b"]);
    assert_eq!(
        block_on(videos.delete("a", "alice", 2, None)).expect("again"),
        Deleted::Missing
    );
    let bobs: String = conn.get(keys::sha256("bob", &sha)).expect("get");
    assert_eq!(bobs, "z");
    // An entry that names another video (the bytes were uploaded again later) stays too.
    block_on(videos.register_many(vec![("c".into(), "alice".into(), String::new(), 30)]))
        .expect("seed c");
    let _: () = conn.set(keys::sha256("alice", &sha), "d").expect("set");
    block_on(videos.delete("c", "alice", 0, Some(&sha))).expect("delete c");
    let kept: String = conn.get(keys::sha256("alice", &sha)).expect("get");
    assert_eq!(kept, "d");
}
