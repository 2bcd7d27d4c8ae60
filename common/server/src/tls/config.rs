//! The TLS server configuration: what the service configures ([`TlsSettings`]), the rustls
//! config built from it, and its reload.
//!
//! Every handshake takes the current `Arc<ServerConfig>` from an [`ArcSwap`]; a reload builds a
//! new config from the files and swaps it in, so new handshakes use the new certificate while
//! open connections keep the config they were made with. A reload that fails (missing file, key
//! not matching the certificate) keeps the old config and says why.
//!
//! Resumption survives reloads and is shared by all workers: the session cache and the ticket
//! key rotator are built once and put into every config.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring as provider;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Sessions the server-side cache keeps (TLS 1.2 session IDs and TLS 1.3 stateful resumption
/// when a client does not take tickets). One entry is a few hundred bytes.
const SESSION_CACHE_ENTRIES: usize = 4096;

/// What a service configures to turn TLS on.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Address of the TLS listener (port 0: worker 0 picks one, the others share it).
    pub listen: std::net::SocketAddr,
    /// PEM file with the certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// Try kernel TLS after each handshake (falls back to rustls per connection).
    pub ktls: bool,
    /// Offer HTTP/2 (ALPN `h2` before `http/1.1`).
    pub http2: bool,
}

/// Why a TLS configuration could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The live TLS configuration of a server (shared by all workers).
pub struct TlsContext {
    settings: TlsSettings,
    current: ArcSwap<ServerConfig>,
    sessions: Arc<dyn StoresServerSessions>,
    ticketer: Arc<dyn ProducesTickets>,
    /// `ktls` is on and the kernel has the `tls` ULP (asked once at load).
    kernel_tls: bool,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// Load the certificate and key named in `settings`.
    pub fn load(settings: TlsSettings) -> Result<Self, TlsError> {
        let sessions: Arc<dyn StoresServerSessions> =
            ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        // Ticket keys rotate every 6 hours (the previous key still decrypts for as long).
        let ticketer = provider::Ticketer::new()?;
        let config = build(&settings, Arc::clone(&sessions), Arc::clone(&ticketer))?;
        let kernel_tls = settings.ktls && super::ktls::kernel_has_tls();
        if settings.ktls && !kernel_tls {
            tracing::info!(
                "kernel TLS unavailable (no `tls` in /proc/sys/net/ipv4/tcp_available_ulp; \
                 `modprobe tls` adds it): TLS runs in user space (rustls), file bodies are \
                 read and encrypted instead of sent with sendfile"
            );
        }
        Ok(Self {
            settings,
            kernel_tls,
            current: ArcSwap::from_pointee(config),
            sessions,
            ticketer,
        })
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Connections should try kernel TLS (configured, and the kernel has it).
    pub fn kernel_tls(&self) -> bool {
        self.kernel_tls
    }

    /// The config new handshakes use.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Read the files again and use them for new handshakes; on error the old config stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(
            &self.settings,
            Arc::clone(&self.sessions),
            Arc::clone(&self.ticketer),
        )?;
        self.current.store(Arc::new(config));
        Ok(())
    }
}

fn build(
    s: &TlsSettings,
    sessions: Arc<dyn StoresServerSessions>,
    ticketer: Arc<dyn ProducesTickets>,
) -> Result<ServerConfig, TlsError> {
    let (chain, key) = read_pem(&s.cert_path, &s.key_path)?;
    // ring provider, TLS 1.3 and 1.2, rustls's default (AEAD-only, forward-secret) suites.
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = if s.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.session_storage = sessions;
    config.ticketer = ticketer;
    // TLS 1.3: two tickets per full handshake (rustls's default) lets a browser open two
    // resumed connections; resumed handshakes get one fresh ticket each.
    config.send_tls13_tickets = 2;
    // kTLS needs the traffic secrets after the handshake.
    config.enable_secret_extraction = s.ktls;
    // Large writes are cut into records here; the limit bounds what one flush sends.
    config.max_fragment_size = None;
    Ok(config)
}

/// The certificate chain and private key from PEM files.
fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let read_err = |what: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Read { what, path, source }
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(read_err("certificate file", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err("certificate file", cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(read_err("key file", key))?;
    Ok((chain, key))
}
