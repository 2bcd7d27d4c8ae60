//! What the front door itself answers (the nodes' own answers pass through untouched).

use ringcast_server::{ErrorResponse, Response};

/// A front-door failure and its status.
#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    /// The upload's node (its tag starts the id) is down; its spool is there, so the request
    /// waits for it rather than going elsewhere.
    #[error("ingest node {tag} is down")]
    NodeDown { tag: String, retry_after_secs: u64 },
    /// No healthy node left for a request any node could take.
    #[error("no ingest node is available")]
    NoNode { retry_after_secs: u64 },
    /// The node refused the connection, reset it, or sent something that is not HTTP.
    #[error("ingest node {tag}: {detail}")]
    BadGateway { tag: String, detail: String },
    /// The node did not connect or answer in time.
    #[error("ingest node {tag} timed out: {what}")]
    Timeout { tag: String, what: &'static str },
    /// Over a rate limit.
    #[error("rate limit of the {by} exceeded")]
    RateLimited {
        by: &'static str,
        retry_after_secs: u64,
    },
}

impl ErrorResponse for FrontDoorError {
    fn status(&self) -> u16 {
        match self {
            FrontDoorError::NodeDown { .. } | FrontDoorError::NoNode { .. } => 503,
            FrontDoorError::BadGateway { .. } => 502,
            FrontDoorError::Timeout { .. } => 504,
            FrontDoorError::RateLimited { .. } => 429,
        }
    }

    fn code(&self) -> &str {
        match self {
            FrontDoorError::NodeDown { .. } => "ingest_node_down",
            FrontDoorError::NoNode { .. } => "no_ingest_node",
            FrontDoorError::BadGateway { .. } => "bad_gateway",
            FrontDoorError::Timeout { .. } => "gateway_timeout",
            FrontDoorError::RateLimited { .. } => "rate_limited",
        }
    }

    fn public_message(&self) -> String {
        match self {
            FrontDoorError::NodeDown { .. } => {
                "the ingest node holding this upload is down; retry later".into()
            }
            FrontDoorError::NoNode { .. } => "no ingest node is available; retry later".into(),
            FrontDoorError::BadGateway { .. } => "the ingest node failed".into(),
            FrontDoorError::Timeout { .. } => "the ingest node did not answer in time".into(),
            FrontDoorError::RateLimited { by, .. } => {
                format!("too many requests from this {by}; retry later")
            }
        }
    }

    fn extra_headers(&self, resp: Response) -> Response {
        match self {
            FrontDoorError::NodeDown {
                retry_after_secs, ..
            }
            | FrontDoorError::NoNode { retry_after_secs }
            | FrontDoorError::RateLimited {
                retry_after_secs, ..
            } => resp.header("Retry-After", retry_after_secs.to_string()),
            _ => resp,
        }
    }
}
