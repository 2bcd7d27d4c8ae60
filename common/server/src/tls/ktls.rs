//! Kernel TLS: after the handshake, hand the traffic keys to the kernel so the socket itself
//! encrypts (`TLS_TX`) and decrypts (`TLS_RX`); file bodies then leave with `sendfile` as on
//! plain connections (zero-copy, as Netflix's Open Connect serves). Where the kernel has no
//! `tls` ULP (`/proc/sys/net/ipv4/tcp_available_ulp` without `tls`; `modprobe tls` adds it) or
//! refuses the cipher, the connection stays with rustls in user space.
//!
//! Order matters, because extracting the secrets consumes the rustls session:
//! 1. the negotiated suite must be one the kernel knows (AES-GCM-128/256, ChaCha20-Poly1305);
//! 2. `setsockopt(TCP_ULP, "tls")` — harmless on failure: the socket stays plain TCP and rustls
//!    carries on (this is the fallback this machine takes);
//! 3. rustls must hold no unprocessed ciphertext nor unsent records (its decrypted plaintext,
//!    e.g. a request that came with the client's Finished, moves to the head buffer);
//! 4. extract the secrets and set `TLS_TX` and `TLS_RX`; a failure here leaves a connection
//!    nobody can speak TLS on any more, so it is closed.
//!
//! With `TLS_RX`, a record that is not application data (an alert such as close_notify, a TLS
//! 1.3 KeyUpdate) makes `read` fail with `EIO`; the connection then ends. Session tickets were
//! sent during the handshake flush, before the keys moved.

use std::io;
use std::os::fd::RawFd;

use rustls::{ConnectionTrafficSecrets, ProtocolVersion, ServerConnection};

const TCP_ULP: libc::c_int = 31;
const SOL_TLS: libc::c_int = 282;
const TLS_TX: libc::c_int = 1;
const TLS_RX: libc::c_int = 2;
const TLS_1_2_VERSION: u16 = 0x0303;
const TLS_1_3_VERSION: u16 = 0x0304;
const TLS_CIPHER_AES_GCM_128: u16 = 51;
const TLS_CIPHER_AES_GCM_256: u16 = 52;
const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;

/// `struct tls12_crypto_info_aes_gcm_128` (linux/tls.h).
#[repr(C)]
struct AesGcm128 {
    version: u16,
    cipher_type: u16,
    iv: [u8; 8],
    key: [u8; 16],
    salt: [u8; 4],
    rec_seq: [u8; 8],
}

/// `struct tls12_crypto_info_aes_gcm_256`.
#[repr(C)]
struct AesGcm256 {
    version: u16,
    cipher_type: u16,
    iv: [u8; 8],
    key: [u8; 32],
    salt: [u8; 4],
    rec_seq: [u8; 8],
}

/// `struct tls12_crypto_info_chacha20_poly1305` (no salt: the whole 12-byte IV).
#[repr(C)]
struct Chacha20Poly1305 {
    version: u16,
    cipher_type: u16,
    iv: [u8; 12],
    key: [u8; 32],
    rec_seq: [u8; 8],
}

/// Where a connection's TLS runs after [`try_enable`] step 2.
pub(crate) enum Offer {
    /// The kernel has no `tls` ULP or refused it (or the suite is not one it knows): rustls
    /// stays in user space.
    Refused(io::Error),
    /// The ULP is on; hand over the keys with [`install`].
    Accepted,
}

/// Steps 1 and 2 (see the module docs).
pub(crate) fn offer(fd: RawFd, tls: &ServerConnection) -> Offer {
    let known = tls.negotiated_cipher_suite().is_some_and(|s| {
        use rustls::CipherSuite::*;
        matches!(
            s.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS13_AES_256_GCM_SHA384
                | TLS13_CHACHA20_POLY1305_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        )
    });
    if !known {
        return Offer::Refused(io::Error::new(
            io::ErrorKind::Unsupported,
            "cipher suite not offloadable",
        ));
    }
    match setsockopt(fd, libc::SOL_TCP, TCP_ULP, b"tls") {
        Ok(()) => Offer::Accepted,
        Err(e) => Offer::Refused(e),
    }
}

/// Whether this kernel has the `tls` ULP, asked once at start-up: a `TCP_ULP` on a fresh,
/// unconnected socket makes the kernel load the module if it can (as `modprobe tls`), then
/// fails with `ENOENT` when there is no such ULP (or `ENOTCONN` when there is). Asking once
/// keeps a kernel without it from trying to load the module on every connection.
pub(crate) fn kernel_has_tls() -> bool {
    // SAFETY: plain socket(2); the descriptor is owned by `OwnedFd` right after.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let probe = setsockopt(
        std::os::fd::AsRawFd::as_raw_fd(&owned),
        libc::SOL_TCP,
        TCP_ULP,
        b"tls",
    );
    let listed = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .is_ok_and(|l| l.split_whitespace().any(|u| u == "tls"));
    listed || probe.is_ok()
}

/// Step 4: extract the secrets from `tls` and install them in the kernel.
pub(crate) fn install(fd: RawFd, tls: ServerConnection) -> io::Result<()> {
    let version = match tls.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => TLS_1_3_VERSION,
        Some(ProtocolVersion::TLSv1_2) => TLS_1_2_VERSION,
        _ => return Err(io::Error::new(io::ErrorKind::Unsupported, "TLS version")),
    };
    let secrets = tls
        .dangerous_extract_secrets()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    set_keys(fd, TLS_TX, version, secrets.tx.0, &secrets.tx.1)?;
    set_keys(fd, TLS_RX, version, secrets.rx.0, &secrets.rx.1)
}

fn set_keys(
    fd: RawFd,
    direction: libc::c_int,
    version: u16,
    seq: u64,
    secrets: &ConnectionTrafficSecrets,
) -> io::Result<()> {
    let rec_seq = seq.to_be_bytes();
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
            let (salt, explicit) = iv.as_ref().split_at(4);
            let info = AesGcm128 {
                version,
                cipher_type: TLS_CIPHER_AES_GCM_128,
                iv: explicit.try_into().map_err(|_| bad("iv"))?,
                key: key.as_ref().try_into().map_err(|_| bad("key"))?,
                salt: salt.try_into().map_err(|_| bad("salt"))?,
                rec_seq,
            };
            setsockopt_struct(fd, direction, &info)
        }
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
            let (salt, explicit) = iv.as_ref().split_at(4);
            let info = AesGcm256 {
                version,
                cipher_type: TLS_CIPHER_AES_GCM_256,
                iv: explicit.try_into().map_err(|_| bad("iv"))?,
                key: key.as_ref().try_into().map_err(|_| bad("key"))?,
                salt: salt.try_into().map_err(|_| bad("salt"))?,
                rec_seq,
            };
            setsockopt_struct(fd, direction, &info)
        }
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            let info = Chacha20Poly1305 {
                version,
                cipher_type: TLS_CIPHER_CHACHA20_POLY1305,
                iv: iv.as_ref().try_into().map_err(|_| bad("iv"))?,
                key: key.as_ref().try_into().map_err(|_| bad("key"))?,
                rec_seq,
            };
            setsockopt_struct(fd, direction, &info)
        }
        _ => Err(io::Error::new(io::ErrorKind::Unsupported, "cipher")),
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("kTLS {what} length"))
}

fn setsockopt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &[u8]) -> io::Result<()> {
    // SAFETY: `fd` is a socket borrowed from a live `TcpStream` for the call; `value` is a
    // valid slice whose length is passed along; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn setsockopt_struct<T>(fd: RawFd, direction: libc::c_int, info: &T) -> io::Result<()> {
    // SAFETY: `T` is one of the `#[repr(C)]` crypto-info structs above, made of integers and
    // byte arrays only (no padding between its fields: every field after the two u16 is a byte
    // array), so viewing it as bytes for the kernel to copy is sound.
    let bytes = unsafe {
        std::slice::from_raw_parts((info as *const T).cast::<u8>(), std::mem::size_of::<T>())
    };
    setsockopt(fd, SOL_TLS, direction, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-connection step 2 on a real established socket: refused exactly when the kernel
    /// has no `tls` ULP (this machine: only `mptcp`), and then the socket is still plain TCP.
    #[test]
    fn ulp_on_an_established_socket_is_refused_without_the_module() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().expect("accept");
        let ulp = setsockopt(server.as_raw_fd(), libc::SOL_TCP, TCP_ULP, b"tls");
        assert_eq!(ulp.is_ok(), kernel_has_tls(), "{ulp:?}");
        if ulp.is_err() {
            server.write_all(b"plain").expect("write");
            let mut got = [0u8; 5];
            client.read_exact(&mut got).expect("read");
            assert_eq!(&got, b"plain");
        }
    }

    #[test]
    fn crypto_info_layouts_match_linux() {
        // Sizes from linux/tls.h (no padding).
        assert_eq!(std::mem::size_of::<AesGcm128>(), 40);
        assert_eq!(std::mem::size_of::<AesGcm256>(), 56);
        assert_eq!(std::mem::size_of::<Chacha20Poly1305>(), 56);
    }
}
