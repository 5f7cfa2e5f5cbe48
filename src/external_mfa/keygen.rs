//! `callverify external-mfa keygen DIR`: a new RSA-2048 signing key (PKCS#8 PEM) and a
//! self-signed certificate for it, the two files `[external_mfa]` names.

use std::path::{Path, PathBuf};

/// How long the self-signed certificate is valid (Entra reads only its key; see docs/ENTRA.md).
const CERT_VALID_DAYS: i64 = 5 * 365;

/// A new key and certificate as PEM text; `name` is the certificate's common name.
pub fn generate(name: &str) -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CERT_VALID_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the certificate: {e}"))?;
    Ok((key.serialize_pem(), cert.pem()))
}

/// Writes `external-mfa-<stamp>.key` (mode 0600) and `.crt` into `dir`; returns their paths.
/// Never overwrites a file.
pub fn write(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let (key, cert) = generate(&format!("callverify external MFA {stamp}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key_path = dir.join(format!("external-mfa-{stamp}.key"));
    let cert_path = dir.join(format!("external-mfa-{stamp}.crt"));
    write_new(&key_path, key.as_bytes(), 0o600)?;
    write_new(&cert_path, cert.as_bytes(), 0o644)?;
    Ok((key_path, cert_path))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents)
        .map_err(|e| format!("{}: {e}", path.display()))
}
