//! A Redis connection for a service that must start while Redis may be down (an edge): opened
//! on first use, re-opened after a failure, every command bounded in time and tried once (the
//! caller keeps its previous answer or reports the failure), living on the side runtime.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::side_runtime;

/// A lazily connecting manager for the Redis at `url`; `timeout` bounds the connect and each
/// answer.
pub fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    // The manager binds to the runtime it is made in: the side runtime.
    let _in_side = side_runtime::handle().enter();
    ConnectionManager::new_lazy_with_config(client, cfg)
}
