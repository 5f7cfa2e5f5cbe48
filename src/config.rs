//! Layered configuration: `config/default.toml` (compiled in), an optional file, then
//! `CALLVERIFY__SECTION__KEY` environment variables. Validated once at start-up.
//!
//! The key names are an operator contract (see README "Configuration"): keep them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

/// The commented defaults, also shipped as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub redis: RedisConfig,
    pub provider: ProviderConfig,
    pub verification: VerificationConfig,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How the provider reaches us: webhook URLs and their signatures are built from it.
    pub public_url: String,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// After SIGTERM/SIGINT, how long in-flight requests may take to finish.
    pub shutdown_grace_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: Secret,
    /// Every key starts with it.
    pub prefix: String,
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `twilio` or `simulator`.
    pub kind: ProviderKind,
    pub twilio: TwilioConfig,
    #[serde(default)]
    pub simulator: SimulatorConfig,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Twilio,
    Simulator,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    pub api_base: String,
    /// Caller ID, E.164.
    pub from: String,
    pub ring_timeout_secs: u32,
    pub request_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Where the in-process simulator listens (`provider.kind = "simulator"`); port 0 = any free port.
    pub listen: SocketAddr,
    /// Multiplies every simulated delay (ring time, gather timeouts, pauses); 1.0 = real time.
    pub time_scale: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 0.05,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    /// How long a verification stays open before it is `expired`.
    pub ttl_secs: u64,
    /// How long a finished verification stays readable after its expiry.
    pub retain_secs: u64,
    /// How many times the prompt is played (first play included) before `no_input`.
    pub max_prompts: u32,
    /// Seconds of silence `<Gather>` waits for a key.
    pub gather_timeout_secs: u32,
    pub default_locale: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    /// Lowercase hex SHA-256 of each bearer API key a portal back-end may use.
    #[serde(default)]
    pub portal_keys_sha256: Vec<String>,
    /// Lowercase hex SHA-256 of each admin key (policy, unblock).
    #[serde(default)]
    pub admin_keys_sha256: Vec<String>,
    #[serde(default)]
    pub events_url: Option<String>,
    #[serde(default)]
    pub events_secret: Option<Secret>,
}

/// A string that never shows in `Debug` output or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if any), then `CALLVERIFY__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("CALLVERIFY__").split("__").lowercase(true));
        Self::from_figment(figment)
    }

    /// Defaults overlaid with a TOML string: used by `demo`, tests and `config check`.
    pub fn from_toml_overlay(overlay: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overlay)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let public = url::Url::parse(&self.server.public_url)
            .map_err(|e| ConfigError::Invalid(format!("server.public_url: {e}")))?;
        if !matches!(public.scheme(), "http" | "https") || public.query().is_some() {
            return bad("server.public_url must be an http(s) URL without a query".into());
        }
        if self.redis.prefix.is_empty() || self.redis.prefix.contains(['{', '}', ' ']) {
            return bad("redis.prefix must be non-empty, without braces or spaces".into());
        }
        if self.provider.kind == ProviderKind::Twilio {
            url::Url::parse(&self.provider.twilio.api_base)
                .map_err(|e| ConfigError::Invalid(format!("provider.twilio.api_base: {e}")))?;
        }
        if !(1..=600).contains(&self.provider.twilio.ring_timeout_secs) {
            return bad("provider.twilio.ring_timeout_secs must be 1..=600".into());
        }
        if self.verification.max_prompts == 0 || self.verification.ttl_secs == 0 {
            return bad("verification.max_prompts and verification.ttl_secs must be > 0".into());
        }
        let mut seen = std::collections::HashSet::new();
        for tenant in &self.tenants {
            if crate::ids::TenantId::parse(&tenant.id).is_err() {
                return bad(format!("tenants: invalid id {:?}", tenant.id));
            }
            if !seen.insert(tenant.id.as_str()) {
                return bad(format!("tenants: duplicate id {:?}", tenant.id));
            }
            for key in tenant
                .portal_keys_sha256
                .iter()
                .chain(&tenant.admin_keys_sha256)
            {
                if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return bad(format!(
                        "tenants.{}: key hashes must be 64 hex characters",
                        tenant.id
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let config = Config::from_toml_overlay("").expect("defaults are valid");
        assert_eq!(config.redis.prefix, "callverify");
        assert_eq!(config.provider.kind, ProviderKind::Twilio);
        assert_eq!(config.provider.twilio.ring_timeout_secs, 30);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config =
            Config::from_toml_overlay("[provider.twilio]\nauth_token = \"s3cr3t-token\"").unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-token"));
    }

    #[test]
    fn unknown_keys_and_bad_hashes_are_rejected() {
        assert!(Config::from_toml_overlay("[server]\nlisten_typo = 1").is_err());
        let bad = "[[tenants]]\nid = \"contoso\"\nportal_keys_sha256 = [\"abc\"]";
        assert!(Config::from_toml_overlay(bad).is_err());
    }
}
