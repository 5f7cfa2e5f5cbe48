//! `callverify demo --web`: callverify with the carrier simulator, plus the demo portal (a
//! Security-info page and its thin back-end, `portal`) and the virtual phone a person answers
//! in the browser (`handset`). Serves until Ctrl-C; the demo's Redis keys are removed on the way
//! out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use super::portal::{self, Portal};
use crate::config::{Config, KeyHash, LegacyTwilio, ProviderKind, TenantConfig};
use crate::ids::{TenantId, UserId};

/// The one user of the demo portal (the reference article's user).
pub const WEB_USER: &str = "adele.vance";
const TENANT: &str = "demo";

type WebResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Serves the page on `page_listener` until `shutdown` resolves. `config` is layered as for
/// `serve` (the Redis URL and key prefix are taken from it).
pub async fn run(
    page_listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> WebResult<()> {
    let page_addr = page_listener.local_addr()?;
    let api_listener = TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api_listener.local_addr()?;

    let portal_key = random_key("demo-portal");
    let admin_key = random_key("demo-admin");
    // "Sign in with Entra (simulated)": callverify's External MFA signing key, for this run only.
    let keys_dir = std::env::temp_dir().join(format!("callverify-demo-{}", random_key("keys")));
    let (signing_key, signing_cert) = crate::external_mfa::keygen::write(&keys_dir)?;
    let page_base = format!("http://{page_addr}");
    let mut config = demo_config(config, api_addr, &portal_key, &admin_key)?;
    config.external_mfa = Some(crate::external_mfa::config::ExternalMfaConfig {
        signing_key_file: signing_key,
        signing_cert_file: signing_cert,
        previous_cert_files: Vec::new(),
    });
    config.tenants[0].external_mfa = Some(crate::external_mfa::config::TenantExternalMfa {
        client_id: super::entra::CLIENT_ID.into(),
        entra_tenant_id: super::entra::ENTRA_TENANT.into(),
        hint_audiences: None,
        cloud: Default::default(),
        entra_jwks_url: Some(url::Url::parse(&format!("{page_base}/entra/keys"))?),
        user_claim: "oid".into(),
        hint_max_age_secs: 600,
        demo_redirect_uri: Some(format!("{page_base}/entra/federation/externalauthprovider")),
    });
    config.validate()?;
    let state = crate::build_state(config).await?;
    let simulator = state
        .simulator
        .clone()
        .ok_or("the simulator did not start")?;
    let store = state.store.clone();
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(crate::serve(api_listener, state, async move {
        let _ = api_stopped.await;
    }));

    let portal_key_for_entra = portal_key.clone();
    let portal = Portal::new(
        format!("http://{api_addr}/v1/tenants/{TENANT}"),
        WEB_USER,
        portal_key,
        admin_key,
        simulator,
    )?;
    let entra = super::entra::DemoEntra::new(
        &format!("http://{api_addr}"),
        &page_base,
        WEB_USER,
        portal_key_for_entra,
        portal.handsets(),
    )?;
    let app = portal::router(Arc::new(portal)).merge(super::entra::router(Arc::new(entra)));
    println!(
        "callverify demo --web: open http://{page_addr}/ (Dutch: http://{page_addr}/?lang=nl)"
    );
    println!("callverify API on http://{api_addr}; Ctrl-C to stop");
    let served = axum::serve(page_listener, app)
        .with_graceful_shutdown(shutdown)
        .await;

    // Leave nothing behind in the operator's Redis.
    let tag = crate::ids::user_tag(&TenantId::parse(TENANT)?, &UserId::parse(WEB_USER)?);
    let _ = store.forget_user(&tag).await;
    let _ = store.unblock(&tag).await;
    let _ = stop_api.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), api).await;
    let _ = std::fs::remove_dir_all(&keys_dir);
    served?;
    Ok(())
}

fn random_key(label: &str) -> String {
    format!("{label}-{}", hex::encode(rand::rng().random::<[u8; 16]>()))
}

/// The simulator in real time (a person is at the phone), a key prefix of its own, and one
/// tenant whose keys only the demo's portal back-end knows.
fn demo_config(
    mut config: Config,
    api_addr: SocketAddr,
    portal_key: &str,
    admin_key: &str,
) -> WebResult<Config> {
    config.server.listen = api_addr;
    config.server.public_url = format!("http://{api_addr}");
    config.provider.kind = ProviderKind::Simulator;
    config.provider.simulator.time_scale = 1.0;
    config.providers = vec![LegacyTwilio::map(&config.provider)];
    config.redis.prefix = format!(
        "{}-webdemo-{}",
        config.redis.prefix,
        hex::encode(rand::rng().random::<[u8; 4]>())
    );
    let hash = |key: &str| KeyHash(Sha256::digest(key.as_bytes()).into());
    config.tenants = vec![TenantConfig {
        id: TenantId::parse(TENANT)?,
        portal_keys_sha256: vec![hash(portal_key)],
        admin_keys_sha256: vec![hash(admin_key)],
        events_url: None,
        events_secret: None,
        // "Sign in with Entra (simulated)" calls the number just registered: no 30 s spacing
        // (the per-number and per-user hourly limits still hold).
        limits: crate::config::LimitOverrides {
            number_spacing: Some(crate::config::Limit {
                max: 0,
                window_secs: 30,
            }),
            ..Default::default()
        },
        providers: None,
        external_mfa: None,
    }];
    config.validate()?;
    Ok(config)
}
