//! The page's files as built into the binary (`include_bytes!` of the repository's `web/`),
//! their content types, and which request paths name them.
//!
//! URL space (none of it collides with `/v/`, `/s/`, `/v1/`, `/files/`, `/live/`):
//! - `/`, `/watch/{id}` and `/live` → `index.html` (the page routes on the client side, so a
//!   deep link to a video works);
//! - `/web/{file}` → a file of `web/` (a fixed list: nothing else of the disk or the binary is
//!   reachable).

/// The page itself.
pub const INDEX: &str = "index.html";

/// Every file the page uses: name under `web/` → bytes. A unit test checks this list against
/// the directory, so a new file cannot be forgotten here.
pub const EMBEDDED: &[(&str, &[u8])] = &[
    (INDEX, include_bytes!("../../../web/index.html")),
    ("app.css", include_bytes!("../../../web/app.css")),
    ("favicon.svg", include_bytes!("../../../web/favicon.svg")),
    ("js/app.js", include_bytes!("../../../web/js/app.js")),
    ("js/api.js", include_bytes!("../../../web/js/api.js")),
    ("js/upload.js", include_bytes!("../../../web/js/upload.js")),
    (
        "js/library.js",
        include_bytes!("../../../web/js/library.js"),
    ),
    ("js/player.js", include_bytes!("../../../web/js/player.js")),
    ("js/live.js", include_bytes!("../../../web/js/live.js")),
    ("js/util.js", include_bytes!("../../../web/js/util.js")),
    (
        "vendor/hls.min.js",
        include_bytes!("../../../web/vendor/hls.min.js"),
    ),
    (
        "vendor/hls.worker.js",
        include_bytes!("../../../web/vendor/hls.worker.js"),
    ),
    (
        "vendor/tus.min.js",
        include_bytes!("../../../web/vendor/tus.min.js"),
    ),
];

/// URL prefix of the page's files.
pub const PREFIX: &str = "/web/";

/// The file a request path names, if the path is the page's: `Some(INDEX)` for the page's
/// own routes, `Some(name)` for `/web/{name}` (any name; whether it exists is the caller's
/// look-up), `None` for every other path.
pub fn file_for(path: &str) -> Option<&str> {
    if path == "/" || path == "/live" || path == "/index.html" {
        return Some(INDEX);
    }
    if let Some(id) = path.strip_prefix("/watch/") {
        return (!id.is_empty() && !id.contains('/')).then_some(INDEX);
    }
    path.strip_prefix(PREFIX).filter(|n| is_safe_name(n))
}

/// A relative name of plain segments (`[A-Za-z0-9._-]`, no empty, `.` or `..` segment): what
/// a directory look-up may join to the configured directory.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// `Content-Type` by extension (the page's own files only).
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Whether a body of this type is worth gzip (text; images here are already compressed).
pub fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type == "image/svg+xml"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn paths_name_the_page_and_its_files_only() {
        for p in ["/", "/live", "/index.html", "/watch/abc"] {
            assert_eq!(file_for(p), Some(INDEX), "{p}");
        }
        assert_eq!(file_for("/web/js/app.js"), Some("js/app.js"));
        for p in [
            "/web/../Cargo.toml",
            "/web/js/../../x",
            "/web/.hidden",
            "/web/",
            "/web//x",
            "/watch/",
            "/watch/a/b",
            "/v/a/master.m3u8",
            "/v1/videos",
            "/files/",
            "/live/key",
            "/healthz",
            "/elsewhere",
        ] {
            assert_eq!(file_for(p), None, "{p}");
        }
    }

    /// Every file of `web/` the page can ask for is built in (tests and docs are not).
    #[test]
    fn the_built_in_list_matches_the_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
        let mut on_disk = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read web/") {
                let p = e.expect("entry").path();
                let rel = p.strip_prefix(root).expect("under web/");
                let rel = rel.to_string_lossy().to_string();
                if p.is_dir() {
                    if rel != "tests" {
                        walk(root, &p, out);
                    }
                } else if !rel.ends_with("README.md") && !rel.ends_with(".LICENSE") {
                    out.push(rel);
                }
            }
        }
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut built: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
        built.sort();
        assert_eq!(built, on_disk);
        for (name, _) in EMBEDDED {
            assert!(is_safe_name(name), "{name}");
            assert_ne!(content_type(name), "application/octet-stream", "{name}");
        }
    }
}
