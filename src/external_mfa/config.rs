//! `[external_mfa]` and `[tenants.external_mfa]`: the configuration of callverify as a Microsoft
//! Entra ID External MFA provider (docs/ENTRA.md). The key names are an operator contract.

use std::path::PathBuf;

use serde::Deserialize;

/// `[external_mfa]`: the key callverify signs its id_tokens with. Absent: the feature is off.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalMfaConfig {
    /// RSA (>= 2048 bits) private key, PKCS#8 PEM.
    pub signing_key_file: PathBuf,
    /// Its X.509 certificate (PEM): the JWKS's `x5c`. Self-signed is fine.
    pub signing_cert_file: PathBuf,
    /// Certificates still published in the JWKS during a key rollover; never used to sign.
    #[serde(default)]
    pub previous_cert_files: Vec<PathBuf>,
}

/// `[tenants.external_mfa]`: one Entra tenant that uses callverify as its External MFA method.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantExternalMfa {
    /// The client ID callverify issued to this Entra tenant: `aud` of our id_token.
    pub client_id: String,
    /// The Entra tenant (directory) GUID: hints whose `tid` / `iss` name another are refused.
    pub entra_tenant_id: String,
    /// Accepted `aud` values of the `id_token_hint` (default: `[client_id]`).
    #[serde(default)]
    pub hint_audiences: Option<Vec<String>>,
    #[serde(default)]
    pub cloud: Cloud,
    /// Where Entra's signing keys are read (default: the cloud's common JWKS).
    #[serde(default)]
    pub entra_jwks_url: Option<url::Url>,
    /// The hint claim that is callverify's user id in this tenant.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// How old (by `iat`) a hint may be. Hints arrive already expired by design: `exp` is not
    /// checked.
    #[serde(default = "default_hint_max_age")]
    pub hint_max_age_secs: u64,
    /// Not configurable: `callverify demo --web` plays Entra locally and receives the post-back
    /// itself. Everywhere else the cloud's redirect URI is the only one accepted.
    #[serde(skip)]
    pub demo_redirect_uri: Option<String>,
}

fn default_user_claim() -> String {
    "oid".into()
}

fn default_hint_max_age() -> u64 {
    600
}

impl TenantExternalMfa {
    /// The `aud` values a hint may carry.
    pub fn audiences(&self) -> Vec<String> {
        self.hint_audiences
            .clone()
            .unwrap_or_else(|| vec![self.client_id.clone()])
    }

    /// The one redirect URI accepted: the cloud's (the demo's own, in `demo --web`).
    pub fn redirect_uri(&self) -> String {
        self.demo_redirect_uri
            .clone()
            .unwrap_or_else(|| self.cloud.redirect_uri())
    }

    /// The JWKS Entra's hints are verified against.
    pub fn jwks_url(&self) -> String {
        match &self.entra_jwks_url {
            Some(url) => url.to_string(),
            None => format!(
                "https://{}/common/discovery/v2.0/keys",
                self.cloud.login_host()
            ),
        }
    }

    /// The `iss` a hint from this tenant carries.
    pub fn hint_issuer(&self) -> String {
        format!(
            "https://{}/{}/v2.0",
            self.cloud.login_host(),
            self.entra_tenant_id
        )
    }

    /// Checks what can be checked at load; `tenant` names the entry in messages.
    pub fn validate(&self, tenant: &str) -> Result<(), String> {
        let at = format!("tenants.{tenant}.external_mfa");
        let printable =
            |s: &str| !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(&self.client_id) {
            return Err(format!(
                "{at}.client_id must be 1-256 printable ASCII characters"
            ));
        }
        let guid = self.entra_tenant_id.len() == 36
            && self
                .entra_tenant_id
                .bytes()
                .enumerate()
                .all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    _ => b.is_ascii_hexdigit(),
                });
        if !guid {
            return Err(format!("{at}.entra_tenant_id must be the tenant's GUID"));
        }
        if self
            .hint_audiences
            .as_ref()
            .is_some_and(|a| a.is_empty() || !a.iter().all(|s| printable(s)))
        {
            return Err(format!("{at}.hint_audiences must list at least one value"));
        }
        if !printable(&self.user_claim) {
            return Err(format!("{at}.user_claim must name a claim"));
        }
        if !(1..=3600).contains(&self.hint_max_age_secs) {
            return Err(format!("{at}.hint_max_age_secs must be 1..=3600"));
        }
        if let Some(url) = &self.entra_jwks_url
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(format!("{at}.entra_jwks_url must be http(s)"));
        }
        Ok(())
    }
}

/// Entra's cloud: its login host, and so the hint's issuer, its JWKS and the redirect URI
/// (docs/ENTRA.md#clouds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Global,
    Usgov,
    China,
}

impl Cloud {
    pub fn login_host(self) -> &'static str {
        match self {
            Cloud::Global => "login.microsoftonline.com",
            Cloud::Usgov => "login.microsoftonline.us",
            Cloud::China => "login.partner.microsoftonline.cn",
        }
    }

    /// The one URL an id_token or an error is posted back to.
    pub fn redirect_uri(self) -> String {
        format!(
            "https://{}/common/federation/externalauthprovider",
            self.login_host()
        )
    }
}
