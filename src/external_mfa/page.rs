//! The pages the browser sees, from web/external-mfa/ (texts in strings.toml, en-US and nl-NL by
//! Accept-Language, as the demo page renders its own): the calling page, the post-back to
//! Entra, and the 400 page. Every page is `no-store`, framed by nobody, and loads nothing but
//! our own script and style sheet.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const SIGNIN: &str = include_str!("../../web/external-mfa/signin.html");
const POST: &str = include_str!("../../web/external-mfa/post.html");
const PROBLEM: &str = include_str!("../../web/external-mfa/problem.html");
const STRINGS: &str = include_str!("../../web/external-mfa/strings.toml");
pub const JS: &str = include_str!("../../web/external-mfa/signin.js");
pub const CSS: &str = include_str!("../../web/external-mfa/signin.css");

/// Our own scripts and styles only; forms go to us (and a post-back to its redirect URI's
/// origin); no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub struct Pages {
    env: minijinja::Environment<'static>,
    strings: Value,
    /// Per language: its texts as the templates read them, and as the calling page's script
    /// reads them (JSON) — converted once, not on every page.
    prepared: std::collections::HashMap<String, (minijinja::Value, String)>,
    /// Absolute path of the assets (`{public_url path}/external-mfa/assets`).
    assets: String,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

/// What the calling page shows.
#[derive(Debug)]
pub struct Calling<'a> {
    pub lang: &'a str,
    /// Absolute path of the sign-in (`…/signin/{id}`).
    pub base: &'a str,
    pub status: &'a str,
    pub masked_phone: Option<&'a str>,
    pub can_retry: bool,
}

impl Pages {
    pub fn new(assets: String) -> Self {
        let mut env = minijinja::Environment::new();
        for (name, source) in [
            ("signin.html", SIGNIN),
            ("post.html", POST),
            ("problem.html", PROBLEM),
        ] {
            env.add_template(name, source)
                .expect("the page templates parse");
        }
        let strings: Value = toml::from_str(STRINGS).expect("strings.toml parses");
        let prepared = strings
            .as_object()
            .expect("strings.toml has a table per language")
            .iter()
            .map(|(lang, t)| {
                let texts = (
                    minijinja::Value::from(minijinja::value::Serde(t)),
                    t.to_string(),
                );
                (lang.clone(), texts)
            })
            .collect();
        Self {
            env,
            strings,
            prepared,
            assets,
        }
    }

    /// The texts of `lang` for the templates, and as JSON.
    fn texts(&self, lang: &str) -> (minijinja::Value, &str) {
        self.prepared
            .get(lang)
            .map_or((minijinja::Value::UNDEFINED, "{}"), |(t, json)| {
                (t.clone(), json.as_str())
            })
    }

    pub fn calling(&self, c: &Calling<'_>) -> Response {
        let t = &self.strings[c.lang];
        let text = |key: &str| t[key].as_str().unwrap_or_default().to_owned();
        let calling = match c.masked_phone {
            Some(phone) => text("calling").replace("{phone}", phone),
            None => text("calling_nophone"),
        };
        let status_text = t[format!("status_{}", c.status)]
            .as_str()
            .map_or_else(|| text("status_calling"), str::to_owned);
        let (t, texts_json) = self.texts(c.lang);
        self.render(
            StatusCode::OK,
            "signin.html",
            minijinja::context! {
                lang => c.lang, t, assets => &self.assets,
                base => c.base, status => c.status, calling, status_text,
                can_retry => c.can_retry, texts_json,
            },
        )
    }

    /// The auto-submitting form that posts `fields` to Entra's `action`.
    pub fn post_back(&self, lang: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let (t, _) = self.texts(lang);
        let mut response = self.render(
            StatusCode::OK,
            "post.html",
            minijinja::context! {
                lang, t, assets => &self.assets, action,
                fields => minijinja::value::Serde(fields),
            },
        );
        // The form goes to the redirect URI (already checked to be the tenant's): allow its origin.
        if let Ok(origin) = url::Url::parse(action).map(|u| u.origin().ascii_serialization())
            && let Ok(csp) = HeaderValue::from_str(&CSP.replace(
                "form-action 'self'",
                &format!("form-action 'self' {origin}"),
            ))
        {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        response
    }

    pub fn problem(&self, status: StatusCode, lang: &str, detail: &str) -> Response {
        let (t, _) = self.texts(lang);
        self.render(
            status,
            "problem.html",
            minijinja::context! { lang, t, assets => &self.assets, detail },
        )
    }

    fn render(&self, status: StatusCode, name: &str, context: minijinja::Value) -> Response {
        let rendered = self.env.get_template(name).and_then(|t| t.render(context));
        match rendered {
            Ok(html) => with_headers(status, "text/html; charset=utf-8", html),
            Err(e) => {
                tracing::error!(error = %e, "external MFA page did not render");
                with_headers(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    String::new(),
                )
            }
        }
    }
}

/// The page headers: no caching, no framing, our own assets only.
pub fn with_headers(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `nl` when the browser prefers Dutch over English, else `en` (Accept-Language, by q-value).
pub fn language(headers: &HeaderMap) -> &'static str {
    let Some(accept) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return "en";
    };
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.split(',').take(20) {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("nl") => "nl",
            Some("en") => "en",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map_or("en", |(lang, _)| lang)
}

/// The call's locale for a page language.
pub fn locale(lang: &str) -> &'static str {
    if lang == "nl" { "nl-NL" } else { "en-US" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &str) -> &'static str {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(accept).unwrap(),
        );
        language(&h)
    }

    #[test]
    fn dutch_only_when_preferred() {
        assert_eq!(with("nl-NL,nl;q=0.9,en;q=0.8"), "nl");
        assert_eq!(with("en-US,nl;q=0.9"), "en");
        assert_eq!(with("de-DE,nl;q=0.5"), "nl");
        assert_eq!(with("fr"), "en");
        assert_eq!(language(&HeaderMap::new()), "en");
    }

    #[test]
    fn every_page_renders_in_both_languages() {
        let pages = Pages::new("/external-mfa/assets".into());
        for lang in ["en", "nl"] {
            let c = Calling {
                lang,
                base: "/b",
                status: "calling",
                masked_phone: Some("+1 ••• ••34"),
                can_retry: false,
            };
            assert_eq!(pages.calling(&c).status(), StatusCode::OK);
            assert_eq!(
                pages
                    .post_back(lang, "https://x", &[("state", "s")])
                    .status(),
                StatusCode::OK
            );
            assert_eq!(
                pages.problem(StatusCode::BAD_REQUEST, lang, "d").status(),
                StatusCode::BAD_REQUEST
            );
        }
    }
}
