//! The videos API (`/v1/videos/{id}`): status and versions of uploaded videos.

pub mod events;
pub mod events_config;
pub mod versions;
pub mod videos;
