//! The crate stays pure: nothing it links (directly or through another crate) does network or
//! runtime I/O. `cargo tree` lists every normal dependency, transitive ones included.

use std::process::Command;

/// Crates that would bring a runtime or network client into the protocol code.
const FORBIDDEN: [&str; 6] = ["tokio", "redis", "rust-s3", "monoio", "mio", "hyper"];

#[test]
fn no_runtime_or_network_crate_in_the_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "ringcast-proto",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"ringcast-proto"), "{tree}");
    assert!(
        names.contains(&"httparse"),
        "the tree lists dependencies: {tree}"
    );
    for bad in FORBIDDEN {
        assert!(
            !names.contains(&bad),
            "{bad} is in ringcast-proto's tree:\n{tree}"
        );
    }
}
