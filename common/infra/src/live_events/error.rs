//! The one error type of live events, shared by the publisher and the subscriber; callers map
//! it into their own (`TranscodeError`, the edge's follower logs it and reconnects).

/// Errors reading or writing live event streams.
#[derive(Debug, thiserror::Error)]
pub enum LiveEventsError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A read got no answer within its deadline (the connection has no response timeout of its
    /// own, so that a blocking `XREAD` is not cut short; see [`super::subscriber`]).
    #[error("{command} got no answer in time")]
    Timeout { command: &'static str },
}
