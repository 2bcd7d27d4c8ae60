//! `[web]` in the edge config: the browser page served at `/`.

use serde::{Deserialize, Serialize};

/// Where the web page comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the page at `/`, `/watch/{id}` and its files under `/web/` (default on).
    pub enabled: bool,
    /// Serve the page's files from this directory (the repository's `web/`) instead of the
    /// copy built into the binary, read on every request: for working on the page without a
    /// rebuild. Empty (default): the built-in copy.
    pub dir: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: String::new(),
        }
    }
}

impl WebConfig {
    /// A configured directory must hold the page.
    pub fn check(&self) -> Result<(), String> {
        if self.enabled && !self.dir.is_empty() {
            let index = std::path::Path::new(&self.dir).join(super::assets::INDEX);
            if !index.is_file() {
                return Err(format!(
                    "web.dir {:?} has no {}: point it at the repository's web/ directory",
                    self.dir,
                    super::assets::INDEX
                ));
            }
        }
        Ok(())
    }
}
