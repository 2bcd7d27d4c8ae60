//! The `[previews]` section of the transcoder config: the poster frame and the seek-thumbnail
//! sprites every VOD job writes from the same decode as its ladder (see `ffmpeg::previews`).

use ringcast_infra::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Poster and thumbnail settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PreviewsConfig {
    /// Widest poster in pixels: the poster has the top rung's size, scaled down (aspect kept,
    /// even dimensions) when that rung is wider.
    pub poster_max_width: u32,
    /// Width of one thumbnail tile in pixels (height follows the aspect, even); smaller sources
    /// keep their own width.
    pub thumbnail_width: u32,
    /// Seconds between thumbnails (the shortest spacing): media longer than
    /// `thumbnail_interval_secs x thumbnail_max_tiles` gets a longer spacing, in whole seconds,
    /// so that it has at most `thumbnail_max_tiles` tiles.
    pub thumbnail_interval_secs: f64,
    /// Most thumbnails per version, over all sprite sheets (100 tiles per 10x10 sheet).
    pub thumbnail_max_tiles: u32,
}

impl Default for PreviewsConfig {
    fn default() -> Self {
        Self {
            poster_max_width: 1280,
            thumbnail_width: 160,
            thumbnail_interval_secs: 2.0,
            thumbnail_max_tiles: 300,
        }
    }
}

impl PreviewsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let even_within = |v: u32, lo: u32, hi: u32| v % 2 == 0 && (lo..=hi).contains(&v);
        if !even_within(self.poster_max_width, 64, 3840) {
            return invalid(format!(
                "previews.poster_max_width {} must be even and within 64–3840",
                self.poster_max_width
            ));
        }
        if !even_within(self.thumbnail_width, 32, 640) {
            return invalid(format!(
                "previews.thumbnail_width {} must be even and within 32–640",
                self.thumbnail_width
            ));
        }
        if !(self.thumbnail_interval_secs >= 0.5 && self.thumbnail_interval_secs <= 600.0) {
            return invalid(format!(
                "previews.thumbnail_interval_secs {} must be within 0.5–600",
                self.thumbnail_interval_secs
            ));
        }
        if !(1..=10_000).contains(&self.thumbnail_max_tiles) {
            return invalid(format!(
                "previews.thumbnail_max_tiles {} must be within 1–10000",
                self.thumbnail_max_tiles
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        PreviewsConfig::default().validate().expect("defaults");
        let bad = [
            PreviewsConfig {
                poster_max_width: 1281,
                ..Default::default()
            },
            PreviewsConfig {
                thumbnail_width: 0,
                ..Default::default()
            },
            PreviewsConfig {
                thumbnail_interval_secs: f64::NAN,
                ..Default::default()
            },
            PreviewsConfig {
                thumbnail_max_tiles: 0,
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}
