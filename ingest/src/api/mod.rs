//! The videos API (`/v1/…`), one file per call, and the ingest's route table ([`routes`]):
//!
//! | route | file |
//! |---|---|
//! | `GET /v1/videos` | [`list`] |
//! | `GET /v1/videos/{id}` | [`videos`] (also the JSON shape every call answers with) |
//! | `PATCH /v1/videos/{id}` | [`update`] |
//! | `DELETE /v1/videos/{id}` | [`delete`] |
//! | `POST /v1/videos/{id}/playback` | [`playback`] |
//! | `GET /v1/live` | [`live_list`] |
//!
//! JSON request bodies are read by [`body`].

pub mod body;
pub mod delete;
pub mod events;
pub mod events_config;
pub mod list;
pub mod live_list;
pub mod playback;
pub mod routes;
pub mod update;
pub mod versions;
pub mod videos;
