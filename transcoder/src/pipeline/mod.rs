//! One job from source to published playlists. [`vod`] runs an attempt at a VOD job (fetch,
//! probe, one ffmpeg ladder, packagers, publish) and [`live`] a live job (pull, live ladder,
//! announce until the stream ends); both hand back an [`outcome::JobOutcome`] and obey
//! [`outcome::Shutdown`]. [`packager`] runs one rendition's cuts and uploads ([`rendition`]:
//! what a rendition produced and where it goes), [`early_master`] writes the master playlists
//! as soon as every rendition has started (live: once it keeps real time, [`master_gate`]), [`previews`] the poster and thumbnails of a VOD
//! version, [`publish`] the final VOD playlists, [`work_dir`] owns the job's scratch directory,
//! and [`watchdog`] stops ffmpeg that stalls, outlives its wall-clock limit or whose job is
//! cancelled.

pub mod early_master;
pub mod live;
pub mod master_gate;
pub mod outcome;
pub mod packager;
pub mod previews;
pub mod publish;
pub mod rendition;
pub mod vod;
pub mod watchdog;
pub mod work_dir;
