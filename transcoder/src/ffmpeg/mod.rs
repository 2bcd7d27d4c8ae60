//! Everything that talks to ffmpeg and ffprobe: how a source is opened ([`input`]), what the
//! VOD and live commands look like ([`args`], built from one per-rung output builder in
//! [`rung`]), running ffmpeg and following its progress ([`run`]), the named pipes its outputs
//! go through ([`fifo`]), probing a source ([`probe`]) and the poster and thumbnail branches
//! of a VOD run ([`previews`]).

pub mod args;
pub mod fifo;
pub mod input;
pub mod previews;
pub mod probe;
pub mod run;
pub mod rung;
