//! Active health checks: one plain thread per node sends `GET {health_path}` every interval
//! (blocking sockets with timeouts; a few bytes a second, so no runtime is needed, and the
//! workers' monoio runtimes, io_uring or epoll, are not involved). 200 = up, anything else or
//! no answer within the timeout = down. A failed connection from a worker marks a node down at
//! once ([`super::pool::Node::set_healthy`]); the next good check brings it back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::pool::Pool;

/// The checker threads and their stop signal.
pub struct HealthChecks {
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl HealthChecks {
    pub fn start(pool: &Arc<Pool>, path: &str, interval: Duration, timeout: Duration) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let threads = (0..pool.nodes.len())
            .filter_map(|i| {
                let (pool, stop, path) = (Arc::clone(pool), Arc::clone(&stop), path.to_string());
                std::thread::Builder::new()
                    .name(format!("edge-health-{}", pool.nodes[i].tag))
                    .spawn(move || run(&pool, i, &path, interval, timeout, &stop))
                    .map_err(|e| tracing::error!(error = %e, "cannot start a health-check thread"))
                    .ok()
            })
            .collect();
        Self {
            stop,
            threads: Mutex::new(threads),
        }
    }

    /// Stop every checker and wait for them.
    pub fn stop(&self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn run(
    pool: &Pool,
    i: usize,
    path: &str,
    interval: Duration,
    timeout: Duration,
    stop: &(Mutex<bool>, Condvar),
) {
    let node = &pool.nodes[i];
    loop {
        match check(node.addr, &node.authority, path, timeout) {
            Ok(()) => node.set_healthy(true, "health check passed"),
            Err(why) => {
                node.health_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                node.set_healthy(false, &why);
            }
        }
        let (flag, cv) = stop;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, interval, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        if *guard {
            return;
        }
    }
}

/// One check: connect, ask, and read the status line, all within `timeout`.
fn check(
    addr: std::net::SocketAddr,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    let left = || {
        deadline
            .saturating_duration_since(std::time::Instant::now())
            .max(Duration::from_millis(1))
    };
    s.set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: ringcast-edge-health\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 512];
    let mut got = 0;
    while got < 12 {
        s.set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err("closed before answering".into()),
            Ok(n) => got += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    if line.starts_with("HTTP/1.1 200 ") || line.starts_with("HTTP/1.0 200 ") {
        Ok(())
    } else {
        Err(format!(
            "answered {:?}",
            line.lines().next().unwrap_or_default()
        ))
    }
}
