//! tus Concatenation extension: `Upload-Concat: partial` creates an upload that is only a piece
//! of a later one; `Upload-Concat: final;{url} {url}…` creates the upload made of those pieces,
//! in order. Clients (tus-js-client's `parallelUploads`, Uppy) send the partial URLs exactly as
//! the server's `Location` gave them: a path (`/files/{id}`) or a full URL — through the front
//! door or another proxy the scheme, host and any path prefix are theirs, so only the last
//! `/files/{id}` segment is read.

use super::TusError;
use crate::keys;

/// Most partial uploads one final upload may name (tus-js-client's `parallelUploads` uses a
/// handful; the bound keeps one request's work and header parsing small).
pub const MAX_PARTS: usize = 256;

/// What an `Upload-Concat` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    /// A piece of a later final upload: never finished (probed, stored) on its own.
    Partial,
    /// The concatenation of these partial uploads (ids, in order).
    Final(Vec<String>),
}

/// `Upload-Concat` of a creation request; absent → `None`.
pub fn parse_concat(v: Option<&str>) -> Result<Option<Concat>, TusError> {
    let Some(v) = v else {
        return Ok(None);
    };
    if v == "partial" {
        return Ok(Some(Concat::Partial));
    }
    let Some(urls) = v.strip_prefix("final;") else {
        return Err(TusError::BadConcat(
            "Upload-Concat must be \"partial\" or \"final;{url} {url}…\"".into(),
        ));
    };
    let mut ids: Vec<String> = Vec::new();
    for url in urls.split(' ').filter(|u| !u.is_empty()) {
        let id = upload_id_of(url)
            .ok_or_else(|| TusError::BadConcat(format!("{url:?} is not an upload URL")))?;
        if ids.iter().any(|i| i == id) {
            return Err(TusError::BadConcat(format!("upload {id} is named twice")));
        }
        ids.push(id.to_string());
        if ids.len() > MAX_PARTS {
            return Err(TusError::BadConcat(format!(
                "at most {MAX_PARTS} partial uploads per final upload"
            )));
        }
    }
    if ids.is_empty() {
        return Err(TusError::BadConcat(
            "a final upload names at least one partial upload".into(),
        ));
    }
    Ok(Some(Concat::Final(ids)))
}

/// The upload id of `/files/{id}` or `http(s)://host/…/files/{id}`.
fn upload_id_of(url: &str) -> Option<&str> {
    let path = match url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        Some(rest) => &rest[rest.find('/')?..],
        None => url,
    };
    if !path.starts_with('/') {
        return None;
    }
    let (_, id) = path.rsplit_once("/files/")?;
    keys::is_valid_id(id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_and_final() {
        assert_eq!(parse_concat(None), Ok(None));
        assert_eq!(parse_concat(Some("partial")), Ok(Some(Concat::Partial)));
        assert_eq!(
            parse_concat(Some(
                "final;/files/a-1 https://cdn.example/files/b-2 http://10.0.0.1:8080/up/files/c"
            )),
            Ok(Some(Concat::Final(vec![
                "a-1".into(),
                "b-2".into(),
                "c".into()
            ])))
        );
        // Extra spaces between URLs are tolerated.
        assert_eq!(
            parse_concat(Some("final;/files/a  /files/b")),
            Ok(Some(Concat::Final(vec!["a".into(), "b".into()])))
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "Partial",
            "final",
            "final;",
            "final; ",
            "final;/files/",
            "final;/videos/a",
            "final;files/a",
            "final;/files/a/b",
            "final;/files/a?x=1",
            "final;/files/../x",
            "final;https://host",
            "final;/files/a /files/a",
            "partial;x",
        ] {
            let e = parse_concat(Some(bad)).unwrap_err();
            assert!(matches!(e, TusError::BadConcat(_)), "{bad:?}");
            assert_eq!(e.status(), 400);
        }
        let many: Vec<String> = (0..=MAX_PARTS).map(|i| format!("/files/p{i}")).collect();
        let header = format!("final;{}", many.join(" "));
        assert!(parse_concat(Some(&header)).is_err());
    }
}
