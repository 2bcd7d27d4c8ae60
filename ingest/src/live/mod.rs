//! Live push: publishers `PUT`/`POST` MPEG-TS to `/live/{key}` ([`push`]); the bytes fan out
//! to pullers on every core ([`fanout`], not to be confused with the edge's live hub, which
//! follows LL-HLS event streams); its config section and counters.

pub mod config;
pub mod fanout;
pub mod metrics;
pub mod push;
