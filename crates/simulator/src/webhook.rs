//! Sends one webhook the way Twilio does: form-encoded, signed with `X-Twilio-Signature`.

use std::time::Duration;

use url::Url;

use super::dialect::Signer;
use super::twiml::Method;

/// Twilio waits 15 s for a webhook answer (docs/PROVIDERS.md#twilio-webhook-timeouts). Real seconds, not scaled: a slow
/// application should look slow in tests too.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Request<'a> {
    pub method: Method,
    pub url: &'a Url,
    pub params: &'a [(String, String)],
}

pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Why no answer came: a Twilio error code (11205 connection failure, 11200 anything else).
#[derive(Debug)]
pub struct Failure {
    pub code: u32,
    pub detail: String,
}

impl Request<'_> {
    /// The URL actually requested: for `GET` the parameters go to the query string and the
    /// signature covers only the URL (docs/PROVIDERS.md#twilio-signature step 2).
    pub fn target(&self) -> Url {
        let mut url = self.url.clone();
        // A fragment carries Twilio connection overrides and is never sent (docs/PROVIDERS.md#twilio-connection-overrides).
        url.set_fragment(None);
        if self.method == Method::Get {
            url.query_pairs_mut().extend_pairs(self.params);
        }
        url
    }

    pub async fn send(&self, client: &reqwest::Client, signer: &Signer) -> Result<Answer, Failure> {
        let target = self.target();
        let (signed_params, body): (&[(String, String)], String) = match self.method {
            Method::Get => (&[], String::new()),
            Method::Post => (
                self.params,
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(self.params)
                    .finish(),
            ),
        };
        let headers = signer.headers(self.method, target.as_str(), signed_params, &body);
        let mut request = match self.method {
            Method::Get => client.get(target),
            Method::Post => client
                .post(target)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        };
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .header("I-Twilio-Idempotency-Token", idempotency_token())
            .timeout(WEBHOOK_TIMEOUT)
            .send()
            .await
            .map_err(|e| Failure {
                code: if e.is_connect() { 11205 } else { 11200 },
                detail: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| Failure {
            code: 11200,
            detail: e.to_string(),
        })?;
        Ok(Answer { status, body })
    }
}

fn idempotency_token() -> String {
    use rand::RngExt;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Path and query of a URL, for transcripts (the host is always the application's).
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}
