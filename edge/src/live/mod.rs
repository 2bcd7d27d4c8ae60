//! Live LL-HLS (rfc8216bis §6.2.5–6.2.6; ADR 0004): playlists rendered from the packager's Redis
//! event streams, blocking reloads woken by the announcement, preload-hinted parts held.
//!
//! From Redis to a response:
//! - [`follower_task`]: one task per rendition on the tokio side runtime; reads the stream and
//!   feeds it to [`stream_state`] (sans-IO: entries in, a `LiveRendition` out, with the recovery
//!   rules), then publishes each new state to the rendition's [`feed`];
//! - [`feed`]: the rendition's last published state (lock-free loads from every core) and the
//!   cores to wake;
//! - [`registry`] and [`hub`]: which renditions are followed, started lazily and stopped when
//!   idle; [`stats`] counts it all for `/metrics`;
//! - [`core_view`]: each monoio core's own view of the renditions it serves (waiters, render
//!   cache, siblings), woken by a relay task per rendition;
//! - [`handler`]: the request side: playlists, held parts, and the prefetch of the newest part
//!   after each publish; [`hot_parts`]: the parts a herd asks for, as shared in-memory files
//!   sent with `sendfile`;
//! - [`keys`]: which requests are live, as pure functions of the object key; [`settings`]: the
//!   `[live]` section of the configuration.

pub mod core_view;
pub mod feed;
pub mod follower_task;
pub mod handler;
pub mod hot_parts;
pub mod hub;
pub mod keys;
pub mod registry;
pub mod settings;
pub mod stats;
pub mod stream_state;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex whose data stays consistent even if a holder panicked (plain collections).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
