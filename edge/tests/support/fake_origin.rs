//! A plain HTTP/1.1 origin on a free loopback port for the `--origin-url` tests, whose answers
//! the test changes while the edge runs: objects, error statuses, a slow answer, a hang, answers held until released, and
//! bodies cut short (Content-Length or chunked). Counts the requests it got.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What the origin does with the next requests.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 200 with the object at the path, 404 without; after `delay`.
    Serve { delay: Duration },
    /// This status with a short body, for every path.
    Status(u16),
    /// Accept, read the request, never answer.
    Hang,
    /// Like `Serve` without delay, but only once [`FakeOrigin::release`] is called: requests
    /// received before are held (counted by [`FakeOrigin::held`]).
    Held,
    /// Promise the object's full Content-Length, send half, close.
    TruncateLength,
    /// Chunked, send half of the object, close without the last chunk.
    TruncateChunked,
}

struct State {
    mode: Mode,
    objects: HashMap<String, Vec<u8>>,
    /// Requests waiting in [`Mode::Held`].
    held: u64,
    released: bool,
}

const SERVE_NOW: Mode = Mode::Serve {
    delay: Duration::ZERO,
};

/// The running origin (its threads end with the test process).
#[derive(Clone)]
pub struct FakeOrigin {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Signalled when held requests may go on.
    gate: Arc<Condvar>,
    requests: Arc<AtomicU64>,
}

impl FakeOrigin {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake origin");
        let addr = listener.local_addr().expect("addr");
        let origin = Self {
            addr,
            state: Arc::new(Mutex::new(State {
                mode: Mode::Serve {
                    delay: Duration::ZERO,
                },
                objects: HashMap::new(),
                held: 0,
                released: false,
            })),
            gate: Arc::new(Condvar::new()),
            requests: Arc::new(AtomicU64::new(0)),
        };
        let o = origin.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let o = o.clone();
                std::thread::spawn(move || o.answer(conn));
            }
        });
        origin
    }

    /// `http://127.0.0.1:PORT{prefix}`.
    pub fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    pub fn put(&self, path: &str, body: &[u8]) {
        self.lock().objects.insert(path.to_string(), body.to_vec());
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Requests held in [`Mode::Held`] right now.
    pub fn held(&self) -> u64 {
        self.lock().held
    }

    /// Lets every held request (and every later one) be answered.
    pub fn release(&self) {
        self.lock().released = true;
        self.gate.notify_all();
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, mut conn: TcpStream) {
        let mut buf = Vec::new();
        let mut tmp = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        let head = String::from_utf8_lossy(&buf).into_owned();
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let (mode, object) = {
            let s = self.lock();
            (s.mode.clone(), s.objects.get(&path).cloned())
        };
        let (mode, object) = match mode {
            Mode::Held => {
                let mut s = self.lock();
                s.held += 1;
                while !s.released {
                    s = self.gate.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                s.held -= 1;
                let object = s.objects.get(&path).cloned();
                (SERVE_NOW, object)
            }
            other => (other, object),
        };
        let _ = match (mode, object) {
            (Mode::Serve { delay }, Some(body)) => {
                std::thread::sleep(delay);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                conn.write_all(head.as_bytes())
                    .and_then(|()| conn.write_all(&body))
            }
            (Mode::Serve { delay }, None) => {
                std::thread::sleep(delay);
                conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            }
            (Mode::Status(code), _) => {
                let head = format!("HTTP/1.1 {code} Oops\r\nContent-Length: 4\r\n\r\noops");
                conn.write_all(head.as_bytes())
            }
            // Turned into an immediate `Serve` above, once released.
            (Mode::Held, Some(_)) => Ok(()),
            (Mode::Hang, _) => {
                // Keep the connection open, silently, until the edge gives up.
                let _ = conn.read(&mut tmp);
                Ok(())
            }
            (Mode::TruncateLength, Some(body)) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                conn.write_all(head.as_bytes())
                    .and_then(|()| conn.write_all(&body[..body.len() / 2]))
            }
            (Mode::TruncateChunked, Some(body)) => {
                let half = &body[..body.len() / 2];
                let head = format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                    half.len()
                );
                conn.write_all(head.as_bytes())
                    .and_then(|()| conn.write_all(half))
                    .and_then(|()| conn.write_all(b"\r\n"))
            }
            (_, None) => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        };
        // Dropping `conn` closes it: the end of a truncated body.
    }
}
