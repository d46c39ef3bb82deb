//! TLS on the gateway's listener (rustls, ring provider, TLS 1.2 and 1.3).
//!
//! [`server_config`] reads the PEM certificate chain and private key; its errors name the
//! file and say what is wrong with it, and never echo the file's contents. [`TlsListener`]
//! accepts TCP connections and completes each handshake in its own task (with a deadline and
//! a bound on handshakes in progress), so a slow or silent client cannot hold up the others;
//! axum serves the finished TLS streams.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the listener's TLS settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read the TLS {what} file: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the TLS {what} file is not valid PEM ({problem})")]
    Pem {
        what: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
    #[error(
        "{path}: no certificate in this file (expected a `-----BEGIN CERTIFICATE-----` section)"
    )]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key in this file (expected a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section)")]
    NoKey { path: PathBuf },
    #[error("the certificate {cert} and the key {key} cannot be used together: {reason}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl TlsError {
    /// True when the problem is with the key file rather than the certificate file.
    pub fn about_key(&self) -> bool {
        match self {
            Self::Read { what, .. } | Self::Pem { what, .. } => *what == "key",
            Self::NoKey { .. } | Self::Unusable { .. } => true,
            Self::NoCertificate { .. } => false,
        }
    }
}

/// The server configuration for a project's `[gateway.tls]`, with paths relative to `dir`.
/// A problem is reported at the setting in `warden.toml` (`config_text` is its text) that
/// names the file at fault.
pub fn for_project(
    dir: &Path,
    config_text: &str,
    tls: &warden_core::config::TlsConfig,
) -> Result<ServerConfig, warden_core::FileError> {
    let cert = dir.join(tls.cert_file.get_ref());
    let key = dir.join(tls.key_file.get_ref());
    server_config(&cert, &key).map_err(|e| {
        let (setting, at) = if e.about_key() {
            ("key_file", tls.key_file.span().start)
        } else {
            ("cert_file", tls.cert_file.span().start)
        };
        warden_core::FileError::at(
            "warden.toml",
            config_text,
            at,
            format!("[gateway.tls] {setting}: {e}"),
        )
        .with_hint("PEM files, relative to the project directory; `enabled = false` in [gateway.tls] serves plain HTTP")
    })
}

fn display(p: &Path) -> PathBuf {
    p.to_path_buf()
}

fn pem_problem(e: &rustls_pki_types::pem::Error) -> &'static str {
    use rustls_pki_types::pem::Error as E;
    // Variants that carry bytes of the file (a malformed line) are described, not shown.
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line",
        E::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        E::Base64Decode(_) => "a section is not valid base64",
        E::SectionTooLarge => "a section is too large",
        _ => "unreadable",
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: display(path),
        source,
    })
}

/// The rustls server configuration for a PEM certificate chain and private key.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<ServerConfig, TlsError> {
    let cert_pem = read("certificate", cert_path)?;
    let mut chain = Vec::new();
    for c in CertificateDer::pem_slice_iter(&cert_pem) {
        match c {
            Ok(c) => chain.push(c),
            Err(e) => {
                return Err(TlsError::Pem {
                    what: "certificate",
                    path: display(cert_path),
                    problem: pem_problem(&e),
                })
            }
        }
    }
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: display(cert_path),
        });
    }
    // The key's bytes are wiped from memory when this buffer goes.
    let key_pem = zeroize::Zeroizing::new(read("key", key_path)?);
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: display(key_path),
            })
        }
        Err(e) => {
            return Err(TlsError::Pem {
                what: "key",
                path: display(key_path),
                problem: pem_problem(&e),
            })
        }
    };
    let unusable = |e: rustls::Error| TlsError::Unusable {
        cert: display(cert_path),
        key: display(key_path),
        reason: e.to_string(),
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(unusable)?;
    // The router speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// How long a client may take to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// A listener that hands axum finished TLS connections.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(error) => {
                        if !matches!(
                            error.kind(),
                            std::io::ErrorKind::ConnectionRefused
                                | std::io::ErrorKind::ConnectionAborted
                                | std::io::ErrorKind::ConnectionReset
                        ) {
                            tracing::error!(message = "accept failed", %error);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(message = "TLS handshake failed", %peer, %error);
                        }
                        Err(_) => {
                            tracing::debug!(message = "TLS handshake timed out", %peer);
                        }
                    }
                });
            }
        });
        Ok(Self {
            rx,
            local,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ended (it only does when the runtime shuts down).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn errors_name_the_file_and_never_show_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = server_config(&missing, &missing).unwrap_err().to_string();
        assert!(e.contains("nope.pem") && e.contains("certificate"), "{e}");

        let not_pem = write(dir.path(), "cert.pem", "hello, not a certificate\n");
        let e = server_config(&not_pem, &missing).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no certificate"),
            "{e}"
        );

        let secret = "c2VjcmV0LWtleS1ieXRlcy1zaG91bGQtbmV2ZXItYXBwZWFy";
        let broken = write(
            dir.path(),
            "broken.pem",
            &format!("-----BEGIN CERTIFICATE-----\n{secret}\n"),
        );
        let e = server_config(&broken, &missing).unwrap_err().to_string();
        assert!(e.contains("broken.pem") && e.contains("no END line"), "{e}");
        assert!(!e.contains(secret), "{e}");

        let bad_key = write(
            dir.path(),
            "key.pem",
            &format!("-----BEGIN PRIVATE KEY-----\n{secret}!!\n-----END PRIVATE KEY-----\n"),
        );
        // A real certificate is not needed to reach the key: any PEM certificate section is.
        let cert = write(
            dir.path(),
            "c.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = server_config(&cert, &bad_key).unwrap_err().to_string();
        assert!(e.contains("key.pem"), "{e}");
        assert!(!e.contains(secret), "{e}");
        let no_key = write(dir.path(), "empty.pem", "");
        let e = server_config(&cert, &no_key).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no private key"),
            "{e}"
        );
    }

    #[test]
    fn a_generated_pair_loads_and_a_foreign_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &ck.cert.pem());
        let key = write(dir.path(), "key.pem", &ck.signing_key.serialize_pem());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let foreign = write(dir.path(), "other.pem", &other.signing_key.serialize_pem());
        let e = server_config(&cert, &foreign).unwrap_err();
        assert!(e.about_key());
        let text = e.to_string();
        assert!(text.contains("cannot be used together"), "{text}");
        assert!(!text.contains("PRIVATE"), "{text}");
    }
}
