//! The videos API (`/v1/videos/{id}`): status and versions of uploaded videos.

pub mod videos;
