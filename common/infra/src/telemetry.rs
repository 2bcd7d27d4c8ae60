//! Tracing setup shared by the binaries: JSON or human logs, filter from `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `json` picks machine-readable lines; the filter defaults to
/// `info` and follows `RUST_LOG` when set. Safe to call twice (the second call is a no-op).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs redirected to files stay plain text.
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
