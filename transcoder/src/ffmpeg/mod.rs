//! Everything that talks to ffmpeg and ffprobe: how a source is opened ([`input`]), what the
//! VOD and live commands look like ([`args`], built from one per-rung output builder in
//! [`rung`]), running ffmpeg and following its progress ([`run`]), the named pipes its outputs
//! go through ([`fifo`]) and probing a source ([`probe`]).

pub mod args;
pub mod fifo;
pub mod input;
pub mod probe;
pub mod run;
pub mod rung;
