//! HTTP/1.1 codec for the monoio servers (RFC 9110 semantics, RFC 9112 message syntax), sans-IO.
//!
//! [`request`] parses a request head out of a read buffer with explicit limits (line length,
//! header count and size) and maps every violation to the status a client should see;
//! [`response`] writes status lines and headers into a buffer; [`chunked`] decodes chunked
//! request bodies (live pushes).

pub mod chunked;
pub mod request;
pub mod response;

pub use request::{parse_request, HttpError, Limits, Method, RequestHead};
pub use response::{error_body, reason, ResponseHead};
