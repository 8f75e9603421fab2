//! TCP is served only over TLS with client certificates (Docker's `--tlsverify`): the server's
//! certificate and key, and the CA that must have signed every client's certificate (rustls).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Docker's `--tlscacert`, `--tlscert`, `--tlskey`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// The rustls server configuration: our certificate, and client certificates required and
/// verified against the CA.
pub fn server_config(f: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &read(&f.ca)?[..]) {
        let c = c.map_err(|e| format!("{}: {e}", f.ca.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", f.ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate", f.ca.display()));
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("client verifier: {e}"))?;
    let certs = rustls_pemfile::certs(&mut &read(&f.cert)?[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", f.cert.display()))?;
    let key = rustls_pemfile::private_key(&mut &read(&f.key)?[..])
        .map_err(|e| format!("{}: {e}", f.key.display()))?
        .ok_or_else(|| format!("{}: no private key", f.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}: {e}", f.cert.display()))?;
    Ok(Arc::new(config))
}
