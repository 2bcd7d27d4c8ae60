//! Fleet-wide purge over Redis pub/sub (channel [`PURGE_CHANNEL`], DESIGN.md "Storage and
//! keys"): the ingest and an edge's `POST /purge?fleet=1` publish a
//! [`ringcast_proto::purge::PurgeMessage`]; every edge subscribes and applies it.
//!
//! - [`publisher`]: [`publish`] (on the [`Queue`](crate::queue::Queue)'s connection, what the
//!   ingest calls) and [`PurgePublisher`] (its own lazy connection, what an edge uses).
//! - [`subscriber`]: [`spawn_subscriber`]: the edge's subscription on the side runtime, with
//!   reconnects and the [`PurgeEvent::Subscribed`] notice after each (re)subscription.
//!
//! Pub/sub delivers at most once and only to connected subscribers: a subscriber that was
//! disconnected must assume it missed messages. That is why every subscription (the first
//! included) is reported, so the edge can drop what a missed message could have purged.

mod error;
pub mod publisher;
pub mod subscriber;

pub use error::PurgeError;
pub use publisher::{publish, PurgePublisher};
pub use ringcast_proto::keys::PURGE_CHANNEL;
pub use subscriber::{spawn_subscriber, PurgeEvent, PurgeSubscription, SubscriberSettings};
