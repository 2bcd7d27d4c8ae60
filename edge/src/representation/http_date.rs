//! HTTP dates (RFC 9110 §5.6.7) as the edge uses them (`Last-Modified`, conditionals):
//! formatting and parsing live in `ringcast_proto::http::date`; the `Date` header of every
//! response is added by the server shell (`ringcast_server::Response::new`).

pub use ringcast_proto::http::date::{format, parse};
