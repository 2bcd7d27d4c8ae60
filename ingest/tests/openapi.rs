//! `docs/openapi.yaml` is a valid OpenAPI 3.1 document (checked by a real validator,
//! `@apidevtools/swagger-parser` via `scripts/js/validate_openapi.mjs`, installed by
//! `scripts/install-deps --test`) and documents exactly the routes and methods the ingest
//! serves: its route table `ringcast_ingest::api::routes::ROUTES`, from which the router
//! answers. Paths marked `x-ringcast-pending` (specified ahead of a branch that serves them)
//! must not be in the table yet; once they are, the mark has to go.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ringcast_ingest::api::routes::ROUTES;

/// Path → methods.
type Routes = BTreeMap<String, BTreeSet<String>>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Run the validator; the documented routes and the pending paths.
fn validate(file: &Path) -> Result<(Routes, BTreeSet<String>), String> {
    let root = workspace();
    let out = Command::new("node")
        .arg(root.join("scripts/js/validate_openapi.mjs"))
        .arg(file)
        .current_dir(root.join("scripts/js"))
        .output()
        .expect("run node (scripts/install-deps --test installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("validator JSON");
    let routes = v["routes"]
        .as_object()
        .expect("routes")
        .iter()
        .map(|(path, methods)| {
            let methods = methods
                .as_array()
                .expect("methods")
                .iter()
                .map(|m| m.as_str().expect("method").to_string())
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let pending = v["pending"]
        .as_array()
        .expect("pending")
        .iter()
        .map(|p| p.as_str().expect("path").to_string())
        .collect();
    Ok((routes, pending))
}

#[test]
fn openapi_is_valid_and_matches_the_route_table() {
    let file = workspace().join("docs/openapi.yaml");
    let (documented, pending) = validate(&file).unwrap_or_else(|e| panic!("invalid: {e}"));
    let served: Routes = ROUTES
        .iter()
        .map(|r| {
            (
                r.pattern.to_string(),
                r.methods().map(str::to_string).collect(),
            )
        })
        .collect();
    for p in &pending {
        assert!(
            !served.contains_key(p),
            "{p} is served now: remove its x-ringcast-pending mark in docs/openapi.yaml"
        );
    }
    let documented_served: Routes = documented
        .into_iter()
        .filter(|(p, _)| !pending.contains(p))
        .collect();
    assert_eq!(
        documented_served, served,
        "docs/openapi.yaml (left) and the route table (right) differ"
    );
    // docs/api.md describes every route too.
    let prose = std::fs::read_to_string(workspace().join("docs/api.md")).expect("api.md");
    for r in ROUTES {
        assert!(
            prose.contains(r.pattern),
            "docs/api.md does not mention {}",
            r.pattern
        );
    }
}

/// The check can fail: a document with a wrong method, or an invalid one, is caught.
#[test]
fn the_check_catches_drift_and_invalid_documents() {
    let text = std::fs::read_to_string(workspace().join("docs/openapi.yaml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    // One method renamed: still valid, but no longer the table's.
    let drifted = write(
        "drift.yaml",
        &text.replacen(
            "    delete:\n      tags: [videos]",
            "    put:\n      tags: [videos]",
            1,
        ),
    );
    let (routes, _) = validate(&drifted).expect("still a valid document");
    assert!(routes["/v1/videos/{id}"].contains("PUT"));
    assert!(!routes["/v1/videos/{id}"].contains("DELETE"));
    // Broken documents are refused by the validator.
    for (name, body) in [
        (
            "version.yaml",
            text.replacen("openapi: 3.1.0", "openapi: 3.1.x", 1),
        ),
        (
            "ref.yaml",
            text.replacen("schemas/Video\" }", "schemas/Vidoe\" }", 1),
        ),
        (
            "opid.yaml",
            text.replacen("operationId: getVideoHead", "operationId: getVideo", 1),
        ),
        (
            "in.yaml",
            text.replacen("      in: path", "      in: paths", 1),
        ),
    ] {
        assert_ne!(body, text, "{name}: the mutation must apply");
        assert!(validate(&write(name, &body)).is_err(), "{name} accepted");
    }
}
