//! The TLS certificate for HTTPS and RTMPS: the operator's (`tls-cert`/`tls-key`), or a
//! self-signed one generated into `<data-dir>/tls/` on first start and reused after.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use edge_config::Config;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub cert_path: PathBuf,
}

/// Writes a file atomically and durably: temporary file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().context("path has no parent")?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

pub fn load_or_generate(cfg: &Config) -> Result<Tls> {
    let (cert_path, key_path) = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = cfg.data_dir.join("tls");
            std::fs::create_dir_all(&dir)?;
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                generate(cfg, &c, &k)?;
            }
            (c, k)
        }
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?,
    ))
    .collect::<Result<_, _>>()
    .with_context(|| format!("{} is not a PEM certificate", cert_path.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?,
    ))?
    .with_context(|| format!("{} holds no private key", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(sc)), cert_path })
}

fn generate(cfg: &Config, cert: &Path, key: &Path) -> Result<()> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let primary = crate::netinfo::primary_address().to_string();
    names.push(primary);
    if let Ok(h) = nix::unistd::gethostname()
        && let Some(h) = h.to_str()
    {
        names.push(h.to_owned());
        names.push(format!("{h}.local"));
    }
    if !cfg.public_host.is_empty() {
        let host = crate::split_host(&cfg.public_host).0.trim_matches(['[', ']']).to_owned();
        names.push(host);
    }
    names.sort();
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "rms-edge appliance");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "rms-edge");
    // Ten years: a box at a venue must not stop serving HTTPS because nobody renewed it.
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = params.not_before + time::Duration::days(3650);
    let kp = rcgen::KeyPair::generate()?;
    let c = params.self_signed(&kp)?;
    write_atomic(key, kp.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(cert, c.pem().as_bytes(), 0o644)?;
    tracing::info!(names = ?names, path = %cert.display(), "generated a self-signed TLS certificate");
    Ok(())
}
