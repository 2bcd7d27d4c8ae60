//! What a server connection does after a response, as pure decisions (RFC 9112 §9.3 persistence,
//! RFC 9110 §10.1.1 `Expect: 100-continue`). The monoio shell (`ringcast-server`) asks these
//! and only moves bytes.

use std::time::{Duration, Instant};

use super::RequestHead;

/// Body bytes of the current request the handler has not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// None left (no body, or read to its end).
    Nothing,
    /// This many bytes of a `Content-Length` body.
    Bytes(u64),
    /// Some of a chunked body (its length is unknown).
    Chunked,
}

impl Unread {
    /// The unread part of `head`'s body before any of it was read.
    pub fn of(head: &RequestHead) -> Self {
        match (head.chunked, head.body_len()) {
            (true, _) => Unread::Chunked,
            (false, 0) => Unread::Nothing,
            (false, n) => Unread::Bytes(n),
        }
    }
}

/// How the connection goes on after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Read the next request.
    KeepOpen,
    /// Read and drop the rest of this request's body, then read the next request.
    DrainThenKeepOpen,
    /// Close now: nothing more is coming from the client that matters.
    Close,
    /// Close, but half-close first and drain what the client still sends for a bounded time
    /// ("lingering close"): closing a socket with unread input makes the kernel send RST,
    /// which can destroy the response before the client read it.
    Linger,
}

/// What happened on the connection before the response, as far as persistence is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// The request allows persistence (HTTP/1.1 without `close`, or 1.0 with `keep-alive`).
    pub keep_alive: bool,
    /// The handler asked to close (e.g. its response is an error about the framing).
    pub close_requested: bool,
    /// The server is shutting down: finish this response, take no more requests.
    pub draining: bool,
    /// A read or write failed or timed out: the stream position is unknown.
    pub broken: bool,
    /// Body bytes left unread by the handler.
    pub unread: Unread,
    /// The client waits for `100 Continue` that was never sent: it may not send the body, so
    /// draining it could wait for nothing (it may still send it after its own timeout, so the
    /// close lingers).
    pub continue_pending: bool,
    /// Bytes already buffered past this request (pipelined input).
    pub buffered: bool,
}

/// The decision after a response. `drain_max`: the largest unread `Content-Length` body worth
/// reading and dropping to keep the connection (0 = never drain, close instead).
pub fn after_response(x: &Exchange, drain_max: u64) -> After {
    if x.broken {
        return After::Close;
    }
    let persist = x.keep_alive && !x.close_requested && !x.draining;
    match x.unread {
        Unread::Nothing if persist => After::KeepOpen,
        Unread::Nothing if x.buffered => After::Linger,
        Unread::Nothing => After::Close,
        Unread::Bytes(n) if persist && !x.continue_pending && n <= drain_max => {
            After::DrainThenKeepOpen
        }
        Unread::Bytes(_) | Unread::Chunked => After::Linger,
    }
}

/// Whether the response must be preceded by `100 Continue` before the body is read: an
/// HTTP/1.1 request with a body and `Expect: 100-continue` (RFC 9110 §10.1.1; a 1.0 client
/// cannot understand 1xx, §15.2).
pub fn expects_continue(head: &RequestHead) -> bool {
    head.version_minor >= 1
        && Unread::of(head) != Unread::Nothing
        && head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// The interim response that lets a waiting client send its body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How long the next read may wait, and what running out of it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadWait {
    /// Between requests: an idle keep-alive connection closes quietly after this.
    Idle(Duration),
    /// Part of a head is buffered: it must complete within this (else 408).
    Head(Duration),
}

/// The wait for the next read: a head under way (first byte at `head_started`) gets what is
/// left of `header_timeout`; otherwise the connection may idle for `idle_timeout`.
pub fn read_wait(
    now: Instant,
    partial_head: bool,
    head_started: Option<Instant>,
    header_timeout: Duration,
    idle_timeout: Duration,
) -> ReadWait {
    match head_started {
        Some(t) if partial_head => {
            ReadWait::Head(header_timeout.saturating_sub(now.saturating_duration_since(t)))
        }
        _ => ReadWait::Idle(idle_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits};

    fn head(raw: &str) -> RequestHead {
        parse_request(raw.as_bytes(), &Limits::default())
            .expect("valid")
            .expect("complete")
            .0
    }

    fn exchange(unread: Unread) -> Exchange {
        Exchange {
            keep_alive: true,
            close_requested: false,
            draining: false,
            broken: false,
            unread,
            continue_pending: false,
            buffered: false,
        }
    }

    #[test]
    fn keeps_open_only_when_everything_allows_it() {
        assert_eq!(
            after_response(&exchange(Unread::Nothing), 0),
            After::KeepOpen
        );
        for change in [
            |x: &mut Exchange| x.keep_alive = false,
            |x: &mut Exchange| x.close_requested = true,
            |x: &mut Exchange| x.draining = true,
        ] {
            let mut x = exchange(Unread::Nothing);
            change(&mut x);
            assert_eq!(after_response(&x, 0), After::Close);
            x.buffered = true;
            assert_eq!(after_response(&x, 0), After::Linger);
        }
        let mut x = exchange(Unread::Nothing);
        x.broken = true;
        assert_eq!(after_response(&x, 1 << 20), After::Close);
    }

    #[test]
    fn small_unread_bodies_are_drained_larger_ones_linger() {
        assert_eq!(
            after_response(&exchange(Unread::Bytes(10)), 10),
            After::DrainThenKeepOpen
        );
        assert_eq!(
            after_response(&exchange(Unread::Bytes(11)), 10),
            After::Linger
        );
        assert_eq!(
            after_response(&exchange(Unread::Bytes(1)), 0),
            After::Linger
        );
        assert_eq!(
            after_response(&exchange(Unread::Chunked), 1 << 20),
            After::Linger
        );
    }

    #[test]
    fn a_client_waiting_for_continue_is_not_drained() {
        let mut x = exchange(Unread::Bytes(5));
        x.continue_pending = true;
        assert_eq!(after_response(&x, 1 << 20), After::Linger);
    }

    #[test]
    fn continue_needs_1_1_a_body_and_the_expectation() {
        let with =
            "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n";
        assert!(expects_continue(&head(with)));
        let no_body = "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n";
        assert!(!expects_continue(&head(no_body)));
        let old = "PUT /x HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
        assert!(!expects_continue(&head(old)));
        let chunked =
            "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
        assert!(expects_continue(&head(chunked)));
    }

    #[test]
    fn a_partial_head_gets_what_is_left_of_the_header_timeout() {
        let t0 = Instant::now();
        let (h, i) = (Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(read_wait(t0, false, None, h, i), ReadWait::Idle(i));
        assert_eq!(read_wait(t0, false, Some(t0), h, i), ReadWait::Idle(i));
        let later = t0 + Duration::from_secs(4);
        assert_eq!(
            read_wait(later, true, Some(t0), h, i),
            ReadWait::Head(Duration::from_secs(6))
        );
        let late = t0 + Duration::from_secs(11);
        assert_eq!(
            read_wait(late, true, Some(t0), h, i),
            ReadWait::Head(Duration::ZERO)
        );
    }
}
