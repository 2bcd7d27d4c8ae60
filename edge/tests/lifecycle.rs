//! The process around the server: readiness line, driver selection and its metric, CLI and
//! config precedence, bad config, and clean exit on SIGTERM.

mod support;

use std::time::Duration;

use ringcast_testkit::free_port;
use support::{command, Edge};

fn reports_its_driver(legacy: bool) {
    let edge = Edge::start(legacy);
    let uring = edge.metric("ringcast_edge_driver_info{driver=\"io_uring\"}");
    let epoll = edge.metric("ringcast_edge_driver_info{driver=\"legacy\"}");
    if legacy {
        assert_eq!(
            (uring, epoll),
            (None, Some(1)),
            "MONOIO_FORCE_LEGACY_DRIVER=1 must give epoll"
        );
    } else if monoio::utils::detect_uring()
        && std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_none()
    {
        assert_eq!(
            (uring, epoll),
            (Some(1), None),
            "io_uring works here, FusionDriver must pick it"
        );
    } else {
        assert_eq!(
            uring.unwrap_or(0) + epoll.unwrap_or(0),
            1,
            "exactly one driver reported"
        );
    }
    let driver = if epoll.is_some() {
        "legacy"
    } else {
        "io_uring"
    };
    let log = edge.process.log_text();
    assert!(log.contains(&format!("monoio {driver} driver")), "{log}");
    assert!(
        log.contains(&format!("ringcast-edge listening on http://{}", edge.addr)),
        "{log}"
    );
}

fn sigterm_exits_cleanly(legacy: bool) {
    let mut edge = Edge::start(legacy);
    // An idle keep-alive connection must not hold the shutdown up.
    let mut idle = edge.conn();
    assert_eq!(
        idle.request("GET", "/healthz", &[], b"")
            .expect("GET")
            .status,
        200
    );
    let status = edge
        .process
        .terminate(Duration::from_secs(10))
        .expect("exited after SIGTERM");
    assert!(status.success(), "{status}\n{}", edge.process.log_text());
    assert!(edge.process.log_text().contains("ringcast-edge stopped"));
}

fn cli_flags_override_the_config_file(legacy: bool) {
    // The file says one port and one worker, env says two workers, the CLI says another port
    // and three workers: the CLI wins.
    let cli_port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("edge.toml");
    let file_port = free_port();
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{file_port}\"\nworkers = 1\n[store]\nroot = \"{}\"\n",
            dir.path().join("store").display()
        ),
    )
    .expect("write config");
    let mut cmd = command(legacy);
    cmd.arg("--config")
        .arg(&cfg)
        .arg("--listen")
        .arg(format!("127.0.0.1:{cli_port}"))
        .arg("--workers")
        .arg("3")
        .env("RINGCAST_EDGE_WORKERS", "2");
    let mut process = ringcast_testkit::Process::spawn("edge-cli", cmd, dir.path());
    let addr = ([127, 0, 0, 1], cli_port).into();
    ringcast_testkit::wait_until(Duration::from_secs(20), "edge on the CLI port", || {
        process.assert_running();
        ringcast_testkit::http::get(addr, "/healthz").is_ok_and(|r| r.status == 200)
    });
    // Worker 0 answers before the others have bound; the start-up line follows once all have.
    ringcast_testkit::wait_until(Duration::from_secs(20), "start-up log line", || {
        process.assert_running();
        process.log_text().contains("monoio ")
    });
    assert!(
        process.log_text().contains("on all 3 workers"),
        "{}",
        process.log_text()
    );
}

fn bad_config_is_refused(legacy: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("edge.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nmemory_cache = 5\n").expect("write");
    let out = command(legacy)
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("memory_cache"), "{stderr}");
    let out = command(legacy)
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn help_lists_the_flags() {
    let out = command(false).arg("--help").output().expect("run --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--config", "--listen", "--workers", "RINGCAST_EDGE_CONFIG"] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
}

/// Each worker listens with the configured accept-queue length (`ss` shows a listening
/// socket's backlog as Send-Q), capped by `net.core.somaxconn` as the kernel does.
fn listen_backlog_is_applied(legacy: bool) {
    let edge = Edge::start_with(support::options(legacy).toml("listen_backlog = 777"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{}", edge.addr.port())])
        .output()
        .expect("run ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let backlogs: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    // One SO_REUSEPORT socket per worker (2 in the tests).
    assert_eq!(backlogs, vec![777.min(somaxconn); 2], "ss: {text}");
}

both_drivers!(
    listen_backlog_is_applied,
    reports_its_driver,
    sigterm_exits_cleanly,
    cli_flags_override_the_config_file,
    bad_config_is_refused,
);
