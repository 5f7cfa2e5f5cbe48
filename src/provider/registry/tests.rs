//! A kind registered beside the built-in ones needs nothing else: an account of it loads with
//! the common keys, is checked, refuses keys it does not know, and is built into an adapter.

use futures_util::FutureExt;

use super::*;
use crate::call::prompts::Answer;
use crate::provider::settings::AccountConfig;
use crate::provider::{
    CallProgress, CallRequest, Markup, ProviderError, Refusal, Webhook, WebhookRequest,
};

/// `kind = "echo"`: one key of its own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoKeys {
    token: crate::config::Secret,
}

impl KindKeys for EchoKeys {
    fn check(&self, key: &str) -> Result<(), String> {
        if self.token.expose().is_empty() {
            return Err(format!("{key}.token must not be empty"));
        }
        Ok(())
    }

    fn adapter(&self, account: &AccountCommon, _locale: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(Echo {
            name: account.name.clone(),
            request_timeout_ms: account.request_timeout(),
        }))
    }
}

/// An adapter that places no calls.
struct Echo {
    name: String,
    request_timeout_ms: u64,
}

impl Provider for Echo {
    fn name(&self) -> &str {
        &self.name
    }
    fn place_call<'a>(
        &'a self,
        _: CallRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, ProviderError>> {
        let timeout = self.request_timeout_ms;
        async move { Err(ProviderError::Unreachable(format!("echo ({timeout} ms)"))) }.boxed()
    }
    fn end_call<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        async { Ok(()) }.boxed()
    }
    fn call_progress<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<CallProgress, ProviderError>> {
        async { Ok(CallProgress::Unknown) }.boxed()
    }
    fn receive(&self, _: &WebhookRequest<'_>) -> Result<Webhook, Refusal> {
        Err(Refusal::MissingSignature)
    }
    fn render(&self, _: &Answer<'_>) -> Markup {
        Markup {
            body: String::new(),
            content_type: "text/plain",
        }
    }
}

fn entry(toml: &str) -> Value {
    use figment::providers::{Format, Toml};
    let table: figment::value::Dict = figment::Figment::from(Toml::string(toml))
        .extract()
        .expect("a TOML table");
    Value::from(table)
}

const ECHO: &str = "name = \"echo-1\"\nkind = \"echo\"\ntoken = \"t\"\nfrom = \"+15005550006\"\ncalls_per_second = 3\nrequest_timeout_ms = 700\n";

#[tokio::test]
async fn a_new_kind_is_its_keys_plus_one_registry_line() {
    let mut kinds: Vec<Kind> = KINDS
        .iter()
        .map(|k| Kind {
            name: k.name,
            parse: k.parse,
        })
        .collect();
    // Without its line the kind is unknown; with it, its accounts load.
    assert!(AccountConfig::parse(&kinds, &entry(ECHO)).is_err());
    kinds.push(Kind::of::<EchoKeys>("echo"));
    let account = AccountConfig::parse(&kinds, &entry(ECHO)).expect("an echo account");
    assert_eq!((account.kind, account.name()), ("echo", "echo-1"));

    let mut config = Config::from_toml_overlay("").unwrap();
    assert_eq!(account.pacing(&config.provider).calls_per_second, 3.0);
    account.check(&config.provider).expect("a valid account");
    // The kind's own check, the common checks, and its own key list apply.
    let empty = AccountConfig::parse(&kinds, &entry(&ECHO.replace("\"t\"", "\"\""))).unwrap();
    assert!(empty.check(&config.provider).unwrap_err().contains("token"));
    let ring = format!("{ECHO}ring_timeout_secs = 0\n");
    let ring = AccountConfig::parse(&kinds, &entry(&ring)).unwrap();
    assert!(ring.check(&config.provider).is_err());
    let stray = format!("{ECHO}auth_id = \"x\"\n");
    let stray = AccountConfig::parse(&kinds, &entry(&stray)).unwrap_err();
    assert!(stray.contains("auth_id"), "{stray}");

    // Configured beside the single-provider form's account, it is built and found by name.
    config.providers.push(account);
    config.validate().expect("valid with an echo account");
    let (simulators, providers) = crate::provider::accounts::start(&config).await.unwrap();
    assert!(simulators.is_empty());
    assert_eq!(config.account_names(), ["twilio", "echo-1"]);
    let echo = providers.get("echo-1").expect("the echo account is built");
    let call = CallRequest {
        to_e164: "+14255551234",
        answer_url: "",
        status_url: "",
        fallback_url: "",
    };
    let refused = echo.place_call(call).await.unwrap_err();
    assert_eq!(refused, ProviderError::Unreachable("echo (700 ms)".into()));
}
