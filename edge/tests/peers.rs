//! The edge tier: three edges on loopback in front of one store, each with the same `[peers]`
//! list. Requests for an object spread over the three (one after another and all at once) cost
//! exactly one store fetch, made by the object's owner; killing an edge keeps every object
//! served (its objects move to the others at once, and its health shows down within an
//! interval); `/_peer/` needs the tier's secret and is never forwarded again. Both drivers.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ringcast_testkit::{free_port, wait_until, Service, Stack};
use support::{error_code, options, parse_metric, pattern};

const SECRET: &str = "tier-secret-0123456789";
const TAGS: [&str; 3] = ["e0", "e1", "e2"];

/// A stack (filesystem store) with three edges `edge0..2` forming one tier.
fn tier(legacy: bool) -> Stack {
    let mut ports = Vec::new();
    while ports.len() < TAGS.len() {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let nodes: Vec<String> = TAGS
        .iter()
        .zip(&ports)
        .map(|(tag, port)| format!("{{ tag = \"{tag}\", url = \"http://127.0.0.1:{port}\" }}"))
        .collect();
    let mut builder = Stack::builder();
    for (i, tag) in TAGS.iter().enumerate() {
        // Generous timeouts: on two busy cores a slow health check or fetch must not make an
        // edge skip a live owner (that would be a second store fetch, which the test counts).
        let peers = format!(
            "[peers]\nnodes = [{}]\nself_tag = \"{tag}\"\nsecret = \"{SECRET}\"\n\
             health_interval_ms = 300\nhealth_timeout_ms = 5000\nfetch_timeout_ms = 20000",
            nodes.join(", ")
        );
        builder = builder.edge(
            options(legacy)
                .name(&format!("edge{i}"))
                .port(ports[i])
                .toml(peers),
        );
    }
    let stack = builder.start();
    // Each edge checked the others as they started (some were not listening yet): wait until
    // every edge sees the whole tier up, as a tier does a health interval after it starts.
    for edge in edges(&stack) {
        wait_until(Duration::from_secs(20), "the tier to be up", || {
            TAGS.iter().all(|t| up(edge, t) == Some(1))
        });
    }
    stack
}

/// `ringcast_edge_peer_node_up` of `tag` as `edge` sees it.
fn up(edge: &Service, tag: &str) -> Option<u64> {
    parse_metric(
        &edge.metrics(),
        &format!("ringcast_edge_peer_node_up{{node=\"{tag}\"}}"),
    )
}

fn edges(stack: &Stack) -> Vec<&Service> {
    (0..TAGS.len())
        .map(|i| stack.service(&format!("edge{i}")))
        .collect()
}

fn metric(edge: &Service, series: &str) -> u64 {
    parse_metric(&edge.metrics(), series).unwrap_or(0)
}

fn store_fetches(edges: &[&Service]) -> u64 {
    edges
        .iter()
        .map(|e| metric(e, "ringcast_edge_origin_fetches_total"))
        .sum()
}

fn requests_spread_over_the_tier_cost_one_store_fetch(legacy: bool) {
    let stack = tier(legacy);
    let edges = edges(&stack);
    let objects: Vec<(String, Vec<u8>)> = (0..12u8)
        .map(|i| (format!("v/t/1/720p/seg{i}.m4s"), pattern(40_000, i)))
        .collect();
    for (key, body) in &objects {
        stack.put(key, body);
    }
    // One after another: every edge three times, in a rotating order.
    for (n, (key, body)) in objects.iter().enumerate() {
        for round in 0..9 {
            let edge = edges[(n + round) % edges.len()];
            let r = edge.get(&format!("/{key}"));
            assert_eq!(r.status, 200, "{key} from {}: {}", edge.name, r.text());
            assert!(
                r.body == *body,
                "{key} from {} has the wrong bytes",
                edge.name
            );
        }
    }
    assert_eq!(
        store_fetches(&edges),
        objects.len() as u64,
        "one store fetch per object"
    );
    // The owners are spread: more than one edge fetched from the store, and the others asked
    // them (each non-owner once per object: its own cache answers after that).
    let fetching: HashSet<&str> = edges
        .iter()
        .filter(|e| metric(e, "ringcast_edge_origin_fetches_total") > 0)
        .map(|e| e.name.as_str())
        .collect();
    assert!(fetching.len() > 1, "owners: {fetching:?}");
    let served: u64 = edges
        .iter()
        .map(|e| metric(e, "ringcast_edge_peer_served_total"))
        .sum();
    assert_eq!(served, 2 * objects.len() as u64, "peer requests answered");

    // All at once: 3 threads per edge ask for new objects at the same time.
    let burst: Vec<(String, Vec<u8>)> = (20..26u8)
        .map(|i| (format!("v/t/1/1080p/seg{i}.m4s"), pattern(60_000, i)))
        .collect();
    for (key, body) in &burst {
        stack.put(key, body);
    }
    let before = store_fetches(&edges);
    std::thread::scope(|s| {
        for edge in &edges {
            for _ in 0..3 {
                let burst = &burst;
                s.spawn(move || {
                    for (key, body) in burst {
                        let r = edge.get(&format!("/{key}"));
                        assert_eq!(r.status, 200, "{key} from {}", edge.name);
                        assert!(r.body == *body, "{key} from {}", edge.name);
                    }
                });
            }
        }
    });
    assert_eq!(
        store_fetches(&edges) - before,
        burst.len() as u64,
        "concurrent requests on three edges: one store fetch per object"
    );
}

fn a_dead_edge_costs_no_object(legacy: bool) {
    let mut stack = tier(legacy);
    let cached: Vec<(String, Vec<u8>)> = (0..9u8)
        .map(|i| (format!("v/k/1/720p/seg{i}.m4s"), pattern(30_000, i)))
        .collect();
    for (key, body) in &cached {
        stack.put(key, body);
        for edge in edges(&stack) {
            assert_eq!(edge.get(&format!("/{key}")).status, 200);
        }
    }
    stack.kill("edge1");
    // New objects (some owned by the dead edge) and cached ones: all served by the others.
    let fresh: Vec<(String, Vec<u8>)> = (0..9u8)
        .map(|i| (format!("v/k/2/720p/seg{i}.m4s"), pattern(30_000, 100 + i)))
        .collect();
    for (key, body) in &fresh {
        stack.put(key, body);
    }
    let survivors = [stack.service("edge0"), stack.service("edge2")];
    for (key, body) in cached.iter().chain(&fresh) {
        for edge in survivors {
            let r = edge.get(&format!("/{key}"));
            assert_eq!(r.status, 200, "{key} from {} after a peer died", edge.name);
            assert!(r.body == *body, "{key} from {}", edge.name);
        }
    }
    // The dead edge shows down on both survivors within a few health intervals.
    for edge in survivors {
        wait_until(
            Duration::from_secs(10),
            "the dead peer to show down",
            || up(edge, "e1") == Some(0),
        );
        assert_eq!(up(edge, "e0"), Some(1), "{}", edge.metrics());
        assert_eq!(up(edge, "e2"), Some(1), "{}", edge.metrics());
    }
}

fn peer_requests_need_the_secret_and_are_never_forwarded(legacy: bool) {
    let stack = tier(legacy);
    let edges = edges(&stack);
    let key = "v/s/1/720p/seg0.m4s";
    let body = pattern(10_000, 7);
    stack.put(key, &body);
    let target = format!("/_peer/{key}");
    for e in &edges {
        let r = e.get(&target);
        assert_eq!((r.status, error_code(&r).as_str()), (403, "forbidden"));
        let r = e
            .conn()
            .request(
                "GET",
                &target,
                &[("Ringcast-Peer", "tier-secret-wrong-456789")],
                b"",
            )
            .expect("request");
        assert_eq!(r.status, 403);
        assert_eq!(metric(e, "ringcast_edge_peer_refused_total"), 2);
    }
    // With the secret every edge answers from the store itself, owner or not: nothing is
    // forwarded, so each of the three made its own store fetch.
    for e in &edges {
        let r = e
            .conn()
            .request("GET", &target, &[("Ringcast-Peer", SECRET)], b"")
            .expect("request");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body == body);
        assert_eq!(
            metric(e, "ringcast_edge_origin_fetches_total"),
            1,
            "{}",
            e.name
        );
        assert_eq!(
            metric(e, "ringcast_edge_peer_requests_total{node=\"e0\"}"),
            0
        );
    }
    // Bad paths stay bad behind the prefix.
    let e = edges[0];
    for (path, status) in [
        ("/_peer/v/s/../x", 400),
        ("/_peer/other/x", 404),
        ("/_peer/v/s/1/none.m4s", 404),
    ] {
        let r = e
            .conn()
            .request("GET", path, &[("Ringcast-Peer", SECRET)], b"")
            .expect("request");
        assert_eq!(r.status, status, "{path}");
    }
    let r = e
        .conn()
        .request("DELETE", &target, &[("Ringcast-Peer", SECRET)], b"")
        .expect("request");
    assert_eq!(r.status, 405);
}

fn without_a_tier_the_peer_path_does_not_exist(legacy: bool) {
    let stack = Stack::builder().edge(options(legacy)).start();
    stack.put("v/n/1/seg0.m4s", b"x");
    let r = stack
        .edge()
        .conn()
        .request(
            "GET",
            "/_peer/v/n/1/seg0.m4s",
            &[("Ringcast-Peer", SECRET)],
            b"",
        )
        .expect("request");
    assert_eq!(r.status, 404);
}

both_drivers!(
    requests_spread_over_the_tier_cost_one_store_fetch,
    a_dead_edge_costs_no_object,
    peer_requests_need_the_secret_and_are_never_forwarded,
    without_a_tier_the_peer_path_does_not_exist,
);
