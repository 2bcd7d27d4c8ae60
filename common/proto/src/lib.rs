//! `ringcast-proto`: the pure protocol logic of ringcast. Everything here is sans-IO: functions
//! and state machines over bytes and values, with the time passed in as `now`, tested without
//! sockets, processes or files. No tokio, redis, rust-s3 or monoio, and no filesystem access
//! (the `pure_dependencies` test checks the manifest).
//!
//! - [`http`]: HTTP/1.1 request parsing, response heads, chunked bodies, ranges, conditionals,
//!   content coding and dates (RFC 9110, RFC 9112).
//! - [`fmp4`]: the fragmented-MP4 box reader (ISO/IEC 14496-12, CMAF).
//! - [`playlist`]: the HLS playlist model, parser, renderer and validator (RFC 8216,
//!   draft-pantos-hls-rfc8216bis).
//! - [`live`]: the LL-HLS live model: part events, per-rendition state, blocking reloads.
//! - [`tus`]: tus 1.0 header handling; [`clamd`]: the clamd `INSTREAM` framing and replies
//!   (the ingest's virus scan); [`upload_pace`]: the minimum body rate of an upload.
//! - [`videos`]: the videos API's listing cursor, `PATCH` bounds and playback URL lifetime.
//! - [`auth`]: API key tokens, owners and roles (what each role may do).
//! - [`secret`]: constant-time comparison, minimum strength and log redaction of secrets.
//! - [`signed_url`]: signed playback URLs, HMAC-SHA256 over a path prefix + expiry.
//! - [`visibility`]: public / unlisted / private videos and how long an edge trusts a cached
//!   answer; [`purge`]: the fleet-wide purge message edges receive over Redis pub/sub.
//! - [`container`]: source container sniffing and the demuxer forced for each.
//! - [`media`]: ffprobe's summary of a source, the media limits checked on it, the output
//!   frame-rate cap, and the forced-format input options of every ffprobe/ffmpeg run.
//! - [`content_type`]: the `Content-Type` of every published object.
//! - [`thumbnails`], [`jpeg`] and [`assets`]: seek-preview sprite plans and their WebVTT track,
//!   JPEG sizes, and the poster/thumbnail record of a published version.
//! - [`versions`]: per-version records and the rollback rules; [`progress`]: the events of a
//!   video's progress stream.
//! - [`front_door`]: routing and head rewriting of the edge's front door to the ingest pool;
//!   [`rate_limit`]: its token buckets.
//! - [`prometheus`]: the Prometheus text exposition writer every `/metrics` uses; [`health`]:
//!   the shape of every service's `/healthz` and `/readyz`.
//! - [`job`] and [`keys`]: the job and event schemas, object and Redis key names.
//! - [`trace_context`]: W3C `traceparent` and the OTLP/HTTP JSON body of finished spans.
//! - [`stream_id`]: Redis stream entry ids, the age of a queued job, how far a job stream may
//!   be trimmed.

pub mod assets;
pub mod auth;
pub mod clamd;
pub mod cmcd;
pub mod container;
pub mod content_type;
pub mod fmp4;
pub mod front_door;
pub mod health;
pub mod http;
pub mod job;
pub mod jpeg;
pub mod keys;
pub mod live;
pub mod media;
pub mod playlist;
pub mod progress;
pub mod prometheus;
pub mod purge;
pub mod rate_limit;
pub mod secret;
pub mod signed_url;
pub mod stream_id;
pub mod thumbnails;
pub mod trace_context;
pub mod tus;
pub mod upload_pace;
pub mod versions;
pub mod videos;
pub mod visibility;
