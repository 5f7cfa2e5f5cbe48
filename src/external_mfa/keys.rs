//! callverify's signing key and the certificates its JWKS publishes: the current key signs every
//! id_token; previous certificates stay in the JWKS during a rollover (docs/ENTRA.md#key-rollover).
//! A key's `kid` is the base64url SHA-256 of its certificate (the same string in the JWKS and in
//! every token header, as Entra requires).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::config::ExternalMfaConfig;

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// One published certificate: its JWK (with `x5c`, `x5t`, `kid`).
#[derive(Clone, Debug)]
pub struct PublishedKey {
    pub kid: String,
    pub jwk: Value,
}

/// The key that signs and every key the JWKS publishes (current first).
pub struct SigningKeys {
    pub kid: String,
    pub key: EncodingKey,
    pub published: Vec<PublishedKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Reads the files `[external_mfa]` names; any problem is an error naming the file.
    pub fn load(config: &ExternalMfaConfig) -> Result<Self, String> {
        let read = |path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| format!("external_mfa: cannot read {}: {e}", path.display()))
        };
        let key_pem = read(&config.signing_key_file)?;
        let cert_pem = read(&config.signing_cert_file)?;
        let previous = config
            .previous_cert_files
            .iter()
            .map(|p| read(p).map(|pem| (p.display().to_string(), pem)))
            .collect::<Result<Vec<_>, _>>()?;
        let previous: Vec<(&str, &[u8])> = previous
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_slice()))
            .collect();
        Self::from_pem(&key_pem, &cert_pem, &previous).map_err(|e| format!("external_mfa: {e}"))
    }

    /// The keys from PEM text: the signing key, its certificate, then previous certificates
    /// (each with a name for messages).
    pub fn from_pem(
        key_pem: &[u8],
        cert_pem: &[u8],
        previous: &[(&str, &[u8])],
    ) -> Result<Self, String> {
        let key = EncodingKey::from_rsa_pem(key_pem)
            .map_err(|e| format!("signing_key_file is not an RSA private key in PEM: {e}"))?;
        let current = publish(cert_pem).map_err(|e| format!("signing_cert_file: {e}"))?;
        let from_key = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256)
            .map_err(|e| format!("signing_key_file: {e}"))?;
        let from_key = serde_json::to_value(&from_key).map_err(|e| e.to_string())?;
        if from_key["n"] != current.jwk["n"] || from_key["e"] != current.jwk["e"] {
            return Err("signing_cert_file is not the certificate of signing_key_file".into());
        }
        let mut published = vec![current.clone()];
        for (name, pem) in previous {
            let key = publish(pem).map_err(|e| format!("previous_cert_files {name}: {e}"))?;
            if published.iter().all(|p| p.kid != key.kid) {
                published.push(key);
            }
        }
        Ok(Self {
            kid: current.kid,
            key,
            published,
        })
    }

    /// `GET …/jwks`: every published key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.published.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

/// The JWK of an RSA certificate in PEM.
fn publish(cert_pem: &[u8]) -> Result<PublishedKey, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem)
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let x509_parser::public_key::PublicKey::RSA(rsa) = cert
        .public_key()
        .parsed()
        .map_err(|e| format!("unreadable public key: {e}"))?
    else {
        return Err("the certificate's key is not RSA".into());
    };
    let n = strip_zeros(rsa.modulus);
    let e = strip_zeros(rsa.exponent);
    if n.len() * 8 < MIN_RSA_BITS {
        return Err(format!("the RSA key has fewer than {MIN_RSA_BITS} bits"));
    }
    let der = &pem.contents;
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(der));
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(n),
        "e": URL_SAFE_NO_PAD.encode(e),
        "x5c": [STANDARD.encode(der)],
        "x5t": URL_SAFE_NO_PAD.encode(Sha1::digest(der)),
    });
    Ok(PublishedKey { kid, jwk })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_loads_and_publishes_one_key_with_its_kid() {
        let (key, cert) = super::super::keygen::generate("test").unwrap();
        let keys = SigningKeys::from_pem(key.as_bytes(), cert.as_bytes(), &[]).unwrap();
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], keys.kid.as_str());
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert!(jwks["keys"][0]["x5c"][0].as_str().unwrap().len() > 100);
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let (key, _) = super::super::keygen::generate("a").unwrap();
        let (_, other_cert) = super::super::keygen::generate("b").unwrap();
        let error = SigningKeys::from_pem(key.as_bytes(), other_cert.as_bytes(), &[]).unwrap_err();
        assert!(error.contains("not the certificate"), "{error}");
    }

    #[test]
    fn previous_certificates_are_published_after_the_current_one() {
        let (key, cert) = super::super::keygen::generate("new").unwrap();
        let (_, old_cert) = super::super::keygen::generate("old").unwrap();
        let keys = SigningKeys::from_pem(
            key.as_bytes(),
            cert.as_bytes(),
            &[("old", old_cert.as_bytes())],
        )
        .unwrap();
        assert_eq!(keys.published.len(), 2);
        assert_eq!(keys.published[0].kid, keys.kid);
        assert_ne!(keys.published[1].kid, keys.kid);
    }
}
