//! The configuration's loading and checks: defaults, layers, the single-provider form.

use super::*;

#[test]
fn defaults_parse_and_validate() {
    let config = Config::from_toml_overlay("").expect("defaults are valid");
    assert_eq!(config.redis.prefix, "callverify");
    assert_eq!(config.provider.kind, ProviderKind::Twilio);
    let twilio = &config.providers[0];
    assert_eq!((twilio.name(), twilio.kind), ("twilio", "twilio"));
    assert_eq!(twilio.common.ring_timeout_secs, 30);
    assert_eq!(config.server.header_read_timeout_ms, 10_000);
    assert_eq!(config.server.idle_timeout_ms, 60_000);
    assert_eq!(config.server.max_connections, 10_000);
    assert_eq!(config.verification.hangup_grace_ms, 3000);
    assert_eq!(config.verification.reconcile_interval_secs, 15);
    assert_eq!(twilio.common.machine_detection, MachineDetection::Off);
    let time_limit = config
        .verification
        .time_limit(twilio.common.time_limit_secs);
    assert_eq!(time_limit, 3 * 35 + 30);
    assert_eq!(twilio.request_timeout_ms(&config.provider), 5000);
    assert!(Config::from_toml_overlay("[provider.twilio]\napi_key_sid = \"SK1\"").is_err());
    assert!(Config::from_toml_overlay("[server]\nmax_connections = 0").is_err());
    assert_eq!(config.server.ops_listen, None);
    assert!(config.server.ops_on_public);
    assert!(Config::from_toml_overlay("[server]\nops_on_public = false").is_err());
    let ops = "[server]\nops_listen = \"127.0.0.1:9090\"\nops_on_public = false";
    let ops = Config::from_toml_overlay(ops).expect("ops listener alone");
    assert_eq!(
        ops.server.ops_listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    let policy = config.default_policy();
    assert!(policy.methods.phone.enabled && policy.methods.phone.office_phone_allowed);
    assert_eq!(policy.allowed_countries, None);
    assert_eq!(policy.default_locale, "en-US");
    assert_eq!(policy.blocked_number_types.len(), 3);
}

#[test]
fn redis_modes_need_their_urls_and_take_lists_as_arrays_or_comma_separated() {
    let config = Config::from_toml_overlay("").unwrap();
    assert_eq!(config.redis.mode, RedisMode::Standalone);
    assert_eq!(config.redis.wait_replicas, 0);
    assert!(Config::from_toml_overlay("[redis]\nmode = \"cluster\"").is_err());
    assert!(
        Config::from_toml_overlay(
            "[redis]\nmode = \"sentinel\"\nsentinel_urls = \"redis://s:26379\""
        )
        .is_err()
    );
    let cluster = Config::from_toml_overlay(
        "[redis]\nmode = \"cluster\"\ncluster_urls = \"redis://a:7000, redis://:pw@b:7001\"",
    )
    .unwrap();
    let urls: Vec<&str> = cluster
        .redis
        .cluster_urls
        .iter()
        .map(|u| u.expose())
        .collect();
    assert_eq!(urls, ["redis://a:7000", "redis://:pw@b:7001"]);
    assert!(!format!("{cluster:?}").contains("pw@"));
    let sentinel = Config::from_toml_overlay(
        "[redis]\nmode = \"sentinel\"\nsentinel_urls = [\"redis://s1:26379\"]\nsentinel_master = \"mymaster\"",
    )
    .unwrap();
    assert_eq!(sentinel.redis.sentinel_urls.len(), 1);
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
    assert!(Config::from_toml_overlay("[policy.methods.email]\nenabled = 1").is_err());
    assert!(Config::from_toml_overlay("[policy]\nallowed_countries = [\"nl\"]").is_err());
    assert!(Config::from_toml_overlay("[policy]\ndefault_locale = \"fr-FR\"").is_err());
    let bad = "[[tenants]]\nid = \"contoso\"\nportal_keys_sha256 = [\"abc\"]";
    assert!(Config::from_toml_overlay(bad).is_err());
    // Parsed once, at load: a bad tenant id or events URL fails there.
    assert!(Config::from_toml_overlay("[[tenants]]\nid = \"con toso\"").is_err());
    let url = "[[tenants]]\nid = \"c\"\nevents_url = \"not a url\"\nevents_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"";
    assert!(Config::from_toml_overlay(url).is_err());
    let good = format!(
        "[[tenants]]\nid = \"contoso\"\nportal_keys_sha256 = [\"{}\"]",
        "AB".repeat(32)
    );
    let config = Config::from_toml_overlay(&good).unwrap();
    assert_eq!(config.tenants[0].portal_keys_sha256[0].0, [0xab; 32]);
}

#[test]
fn abuse_defaults_and_tenant_overrides() {
    let config = Config::from_toml_overlay(
        "[[tenants]]\nid = \"contoso\"\nlimits = { user = { max = 9, window_secs = 60 } }",
    )
    .unwrap();
    let limits = &config.abuse.limits;
    assert_eq!(
        limits.number_spacing,
        Limit {
            max: 1,
            window_secs: 30
        }
    );
    assert_eq!(
        limits.number,
        Limit {
            max: 5,
            window_secs: 3600
        }
    );
    assert_eq!(config.abuse.fraud_block_secs, 90 * 86_400);
    assert_eq!(config.provider.calls_per_second, 1.0);
    let effective = limits.for_tenant(&config.tenants[0].limits);
    assert_eq!(
        effective.user,
        Limit {
            max: 9,
            window_secs: 60
        }
    );
    assert_eq!(effective.number, limits.number);
    // Layers merge key by key: a partial entry keeps the default window.
    let partial = Config::from_toml_overlay("[abuse.limits]\nuser = { max = 1 }").unwrap();
    assert_eq!(partial.abuse.limits.user.window_secs, 3600);
    let partial = "[[tenants]]\nid = \"contoso\"\nlimits = { user = { max = 1 } }";
    assert!(
        Config::from_toml_overlay(partial).is_err(),
        "tenant entries are whole"
    );
}

#[test]
fn event_secrets_are_validated_at_load() {
    let tenant = "[[tenants]]\nid = \"contoso\"\nevents_url = \"https://portal.example/hooks\"\n";
    assert!(
        Config::from_toml_overlay(tenant).is_err(),
        "url without secret"
    );
    let bad = format!("{tenant}events_secret = \"whsec_@@@\"");
    assert!(Config::from_toml_overlay(&bad).is_err());
    let good = format!("{tenant}events_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"");
    assert!(Config::from_toml_overlay(&good).is_ok());
}

#[test]
fn provider_accounts_and_tenant_choice_are_validated_at_load() {
    let accounts = r#"
[[providers]]
name = "twilio-main"
kind = "twilio"
account_sid = "AC1"
auth_token = "t"
from = "+15005550006"
[[providers]]
name = "telnyx"
kind = "telnyx"
api_key = "KEY"
account_sid = "a"
application_sid = "app"
public_key = "k"
from = "+15005550006"
calls_per_second = 5
"#;
    let config = Config::from_toml_overlay(&format!(
        "{accounts}[[tenants]]\nid = \"contoso\"\nproviders = [\"telnyx\", \"twilio-main\"]"
    ))
    .unwrap();
    assert_eq!(config.account_names(), ["twilio-main", "telnyx"]);
    assert_eq!(
        config.providers[1]
            .pacing(&config.provider)
            .calls_per_second,
        5.0
    );
    assert_eq!(
        config.providers[0]
            .pacing(&config.provider)
            .calls_per_second,
        1.0
    );
    // An unknown account, a key of another kind, a duplicate name: refused at load.
    let unknown = format!("{accounts}[[tenants]]\nid = \"c\"\nproviders = [\"plivo\"]");
    assert!(Config::from_toml_overlay(&unknown).is_err());
    let wrong_key = accounts.replace(
        "public_key = \"k\"",
        "public_key = \"k\"\nsigning_key = \"x\"",
    );
    assert!(Config::from_toml_overlay(&wrong_key).is_err());
    let duplicate = accounts.replace("name = \"telnyx\"", "name = \"twilio-main\"");
    assert!(Config::from_toml_overlay(&duplicate).is_err());
    let unknown_kind = accounts.replace("kind = \"telnyx\"", "kind = \"telnix\"");
    assert!(Config::from_toml_overlay(&unknown_kind).is_err());
    // The single-provider form is one account named twilio.
    assert_eq!(
        Config::from_toml_overlay("").unwrap().account_names(),
        ["twilio"]
    );
}

#[test]
fn the_single_provider_form_is_mapped_onto_one_account() {
    use figment::providers::{Format, Toml};
    // Environment overrides of `[provider.twilio]` keys still reach the account.
    let figment = Figment::from(Toml::string(DEFAULT_TOML))
        .merge(("provider.twilio.auth_token", "from-the-environment"))
        .merge(("provider.twilio.ring_timeout_secs", 12));
    let config = Config::from_figment(figment).unwrap();
    let [account] = &config.providers[..] else {
        panic!("one account")
    };
    assert_eq!((account.name(), account.kind), ("twilio", "twilio"));
    assert_eq!(account.common.ring_timeout_secs, 12);
    assert!(format!("{:?}", account.keys).contains("account_sid"));
    assert!(!format!("{config:?}").contains("from-the-environment"));
    // provider.kind = "simulator": the in-process carrier, under the same name.
    let simulated = Config::from_toml_overlay("[provider]\nkind = \"simulator\"").unwrap();
    assert_eq!(simulated.providers[0].kind, "simulator");
    assert_eq!(simulated.providers[0].name(), "twilio");
    // Keys that belong to [provider], and a bad value, name where they are written.
    assert!(Config::from_toml_overlay("[provider.twilio]\ncalls_per_second = 2").is_err());
    let err = Config::from_toml_overlay("[provider.twilio]\nring_timeout_secs = 0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("provider.twilio.ring_timeout_secs"), "{err}");
    // Written accounts replace the form.
    let written = "[[providers]]\nname = \"sim\"\nkind = \"simulator\"\n";
    assert_eq!(
        Config::from_toml_overlay(written).unwrap().account_names(),
        ["sim"]
    );
}
