//! Config loading shared by every service: a TOML file (optional) overlaid with `RINGCAST_*`
//! environment variables, deserialized with `deny_unknown_fields` into the service's struct.
//!
//! Env override names: `{PREFIX}{SECTION}__{FIELD}` in upper case, `__` separating nesting levels,
//! e.g. `RINGCAST_EDGE_LISTEN=127.0.0.1:8080` or `RINGCAST_EDGE_STORE__BACKEND=s3`. Values parse as
//! TOML scalars (numbers, booleans) when they can, else as strings.
//!
//! Also holds the config sections several services share: [`StoreConfig`] and [`RedisConfig`].

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Load `T` from `path` (if any) and env vars starting with `env_prefix` (e.g. `RINGCAST_EDGE_`).
pub fn load<T: DeserializeOwned>(path: Option<&Path>, env_prefix: &str) -> Result<T, ConfigError> {
    load_from(path, env_prefix, std::env::vars())
}

/// Like [`load`] with an explicit environment (for tests).
pub fn load_from<T: DeserializeOwned>(
    path: Option<&Path>,
    env_prefix: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|source| ConfigError::Parse {
                    path: p.to_path_buf(),
                    source: Box::new(source),
                })?
        }
        None => toml::Table::new(),
    };
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(env_prefix) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::Invalid(format!(
                "env var {name}: empty path component"
            )));
        }
        set_path(&mut table, &path, scalar(&value))?;
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))
}

/// Parse an env value as a TOML scalar where it is one (`8`, `true`, `1.5`), else a string.
fn scalar(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)),
            ) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> Result<(), ConfigError> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(ConfigError::Invalid(format!("{first} is not a section"))),
            }
        }
    }
}

/// Which object-store backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Files under `root` (embedded default for single-machine demos).
    #[default]
    Fs,
    /// Any S3-compatible endpoint (MinIO, Garage, s3s-fs, AWS).
    S3,
}

/// Object store section (`[store]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `fs` or `s3`.
    pub backend: StoreBackend,
    /// fs backend: directory holding the objects.
    pub root: PathBuf,
    /// s3 backend: endpoint URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// s3 backend: bucket (created when missing).
    pub bucket: String,
    /// s3 backend: region name sent in SigV4.
    pub region: String,
    /// s3 backend: access key id.
    pub access_key: String,
    /// s3 backend: secret key.
    pub secret_key: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Fs,
            root: PathBuf::from(".ringcast/store"),
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "ringcast".into(),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
        }
    }
}

/// Redis section (`[redis]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Connection URL, e.g. `redis://127.0.0.1:6379/0`.
    pub url: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
        }
    }
}

/// HTTPS listener section (`[tls]`) of the services on the server shell (edge, ingest). TLS is
/// on when `listen` is set; plain HTTP stays on the service's `listen`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Address of the HTTPS listener, e.g. `0.0.0.0:8443`. Empty = no TLS.
    pub listen: String,
    /// PEM file with the certificate chain, leaf first. Re-read on SIGHUP.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1). Re-read on SIGHUP.
    pub key_file: PathBuf,
    /// Hand the traffic keys to the kernel after the handshake (kTLS) so file bodies keep
    /// `sendfile`; a kernel without the `tls` ULP keeps rustls in user space per connection.
    pub ktls: bool,
    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`). Request bodies over h2 are buffered up to
    /// 1 MiB before the handler runs (larger: 413): for the edge's GETs; leave it off where
    /// large uploads come in (the ingest's tus PATCHes use HTTP/1.1 then).
    pub http2: bool,
}

impl TlsConfig {
    /// The HTTPS address, `None` when TLS is off; `Err` names what is wrong.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let addr = self
            .listen
            .parse()
            .map_err(|e| format!("tls.listen {:?}: {e}", self.listen))?;
        if self.cert_file.as_os_str().is_empty() || self.key_file.as_os_str().is_empty() {
            return Err("tls.listen is set: tls.cert_file and tls.key_file are required".into());
        }
        Ok(Some(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        listen: String,
        #[serde(default)]
        workers: usize,
        #[serde(default)]
        store: StoreConfig,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tls_needs_cert_and_key_when_on() {
        assert_eq!(TlsConfig::default().listen_addr(), Ok(None));
        let mut t = TlsConfig {
            listen: "127.0.0.1:8443".into(),
            ..TlsConfig::default()
        };
        assert!(t.listen_addr().unwrap_err().contains("cert_file"));
        t.cert_file = "c.pem".into();
        t.key_file = "k.pem".into();
        assert_eq!(t.listen_addr(), Ok(Some(([127, 0, 0, 1], 8443).into())));
        t.listen = "nope".into();
        assert!(t.listen_addr().unwrap_err().starts_with("tls.listen"));
    }

    #[test]
    fn env_overrides_file_values_and_nests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"a:1\"\nworkers = 1\n[store]\nbucket = \"b\"\n",
        )
        .expect("write");
        let cfg: Demo = load_from(
            Some(&file),
            "RC_",
            env(&[
                ("RC_WORKERS", "4"),
                ("RC_STORE__BACKEND", "s3"),
                ("OTHER", "x"),
            ]),
        )
        .expect("load");
        assert_eq!(cfg.listen, "a:1");
        assert_eq!(cfg.workers, 4);
        assert_eq!(cfg.store.backend, StoreBackend::S3);
        assert_eq!(cfg.store.bucket, "b");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = load_from::<Demo>(None, "RC_", env(&[("RC_LISTEN", "x"), ("RC_LISTN", "y")]))
            .expect_err("unknown field");
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = load_from::<Demo>(Some(Path::new("/nonexistent/x.toml")), "RC_", env(&[]))
            .expect_err("missing");
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
