//! A response as handlers build it: status, headers and a small in-memory body. The connection
//! adds framing (`Content-Length`, `Connection`) and the CORS headers every response carries.

use ringcast_proto::http::error_body;

/// A complete response; bodies here are small (JSON, metrics text), uploads only flow inward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this response (e.g. the request body could not be consumed).
    pub close: bool,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A JSON body.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            body: value.to_string().into_bytes(),
            ..Self::new(status)
        }
        .header("Content-Type", "application/json")
    }

    /// The project-wide JSON error shape `{"error":{"code","message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self {
            body: error_body(code, message).into_bytes(),
            ..Self::new(status)
        }
        .header("Content-Type", "application/json")
        // Errors are about this request only; never let a cache replay them.
        .header("Cache-Control", "no-store")
    }

    /// A plain-text body with a content type.
    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::new(status)
        }
        .header("Content-Type", content_type)
    }

    /// First value of a header set on this response.
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
