//! HTTP/1.1 codec for the monoio servers (RFC 9110 semantics, RFC 9112 message syntax), sans-IO.
//!
//! [`request`] parses a request head out of a read buffer with explicit limits (line length,
//! header count and size) and maps every violation to the status a client should see;
//! [`response`] writes status lines and headers into a buffer, [`response_parser`] reads them
//! back (the clients: status, headers, body framing); [`chunked`] decodes chunked
//! request bodies (live pushes). [`range`] (RFC 9110 §14), [`conditional`] (§8.8, §13),
//! [`date`] (§5.6.7) and [`encoding`] (§12.5.3) are the caching-server decisions the edge makes
//! per request, as pure functions. [`persistence`] decides what a connection does after a
//! response (keep-alive, drain, lingering close, `100 Continue`).

pub mod chunked;
pub mod conditional;
pub mod date;
pub mod encoding;
pub mod h2_guard;
pub mod persistence;
pub mod range;
pub mod request;
pub mod response;
pub mod response_parser;

pub use request::{parse_request, parse_request_into, HttpError, Limits, Method, RequestHead};
pub use response::{error_body, reason, HeaderValue, ResponseHead};
pub use response_parser::{parse_response_head, BodyFraming, ParsedResponse, ResponseParseError};
