//! Prometheus metrics through the `metrics` facade and its Prometheus exporter (no hand-written
//! exposition). The recorder is process-wide: installed once, on first use, and rendered at
//! `GET /metrics`. Label values come from small fixed sets (matched route templates, status
//! codes, reasons), never from ids or phone numbers, so the number of series stays bounded.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{Label, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "callverify_http_requests_total";
pub const HTTP_DURATION: &str = "callverify_http_request_duration_seconds";
pub const VERIFICATIONS_STARTED: &str = "callverify_verifications_started_total";
pub const VERIFICATIONS_APPROVED: &str = "callverify_verifications_approved_total";
pub const VERIFICATIONS_FAILED: &str = "callverify_verifications_failed_total";
pub const VERIFICATIONS_FRAUD_REPORTED: &str = "callverify_verifications_fraud_reported_total";
pub const SIGNATURE_FAILURES: &str = "callverify_webhook_signature_failures_total";
pub const PROVIDER_REQUESTS: &str = "callverify_provider_requests_total";
pub const PROVIDER_CALLS: &str = "callverify_provider_calls_total";
pub const PROVIDER_DURATION: &str = "callverify_provider_request_duration_seconds";
pub const REDIS_ERRORS: &str = "callverify_redis_errors_total";
pub const RECONCILIATIONS: &str = "callverify_reconciliations_total";
pub const RECONCILE_OLDEST_OVERDUE: &str = "callverify_reconcile_oldest_overdue_seconds";
pub const PROVIDER_MISCONFIGURED: &str = "callverify_provider_misconfigured_total";
pub const REQUEST_BODY_TIMEOUTS: &str = "callverify_request_body_timeouts_total";
pub const CALLS_RATE_LIMITED: &str = "callverify_calls_rate_limited_total";
pub const EVENTS_DELIVERED: &str = "callverify_events_delivered_total";

/// Histogram buckets (seconds) for every `*_seconds` metric: fine below 5 ms, where webhook
/// answers should be, and up to the 30 s long-poll.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
    30.0,
];

/// How often histograms are drained when nobody scrapes (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on the first call. Idempotent: many servers in one
/// process (the tests) share it, so counters are per process, not per server.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        zero_alert_counters();
        let upkeep = handle.clone();
        // A plain thread, not a task: the first caller's runtime may be gone (tests) before
        // the process ends.
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by matched route, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency, by matched route, method and status"
    );
    describe_counter!(
        VERIFICATIONS_STARTED,
        "verifications created (a call was asked for), by purpose"
    );
    describe_counter!(
        VERIFICATIONS_APPROVED,
        "verifications approved with the pound key, by purpose"
    );
    describe_counter!(
        VERIFICATIONS_FAILED,
        "verifications ended without approval, by reason (expired and canceled included)"
    );
    describe_counter!(
        VERIFICATIONS_FRAUD_REPORTED,
        "verifications ended by a fraud report (0 then #), by purpose"
    );
    describe_counter!(
        SIGNATURE_FAILURES,
        "provider webhooks refused for a missing or wrong signature"
    );
    describe_counter!(
        PROVIDER_REQUESTS,
        "provider REST requests, by operation and outcome (ok, rejected, failed)"
    );
    describe_counter!(
        PROVIDER_CALLS,
        "calls asked of each provider account, by account and outcome (placed, rejected, invalid_number, number_not_allowed, misconfigured, throttled, unreachable, circuit_open, unknown)"
    );
    describe_histogram!(
        PROVIDER_DURATION,
        metrics::Unit::Seconds,
        "provider REST request latency, by operation and outcome"
    );
    describe_counter!(
        RECONCILIATIONS,
        "reconciliation checks of live verifications against the provider's record, by outcome (ended, open, deferred, done, provider_error, redis_error)"
    );
    metrics::describe_gauge!(
        RECONCILE_OLDEST_OVERDUE,
        "how late (seconds) the oldest due reconciliation check was when this instance last began a pass (0: none was due)"
    );
    describe_counter!(
        PROVIDER_MISCONFIGURED,
        "calls refused because the provider account is misconfigured (credentials, caller ID, trial), by provider error code: alert on any increase"
    );
    describe_counter!(
        REQUEST_BODY_TIMEOUTS,
        "requests whose body was still arriving at their deadline (answered 408: the client's slowness, not a backend failure)"
    );
    describe_counter!(
        CALLS_RATE_LIMITED,
        "verification starts refused by a rate limit (nothing dialled), by limit"
    );
    describe_counter!(
        EVENTS_DELIVERED,
        "portal event delivery attempts, by result (success, retry, gone, gave_up, dropped)"
    );
    describe_counter!(
        REDIS_ERRORS,
        "Redis commands that failed, by where (api, webhook) and kind (timeout, connection, other)"
    );
}

/// The counters alerts watch exist from the start at 0, so `increase()` sees their first
/// increment (a series born at 1 shows no increase).
fn zero_alert_counters() {
    metrics::counter!(PROVIDER_MISCONFIGURED).absolute(0);
    for reason in ["missing", "mismatch"] {
        metrics::counter!(SIGNATURE_FAILURES, "reason" => reason).absolute(0);
    }
    for source in ["api", "webhook", "reconcile"] {
        for kind in ["timeout", "connection", "other"] {
            metrics::counter!(REDIS_ERRORS, "source" => source, "kind" => kind).absolute(0);
        }
    }
    for result in ["gave_up", "dropped"] {
        metrics::counter!(EVENTS_DELIVERED, "result" => result).absolute(0);
    }
    for outcome in ["provider_error", "redis_error"] {
        metrics::counter!(RECONCILIATIONS, "outcome" => outcome).absolute(0);
    }
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    let mut response = install().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// What an HTTP request is counted and timed by: matched route template (`unmatched` for the
/// fallback, so unknown paths cannot create series), method, and later its status.
pub struct HttpLabels {
    /// The matched route (a shared string: no copy per request).
    route: Option<MatchedPath>,
    method: &'static str,
}

/// The request counter and latency histogram of one route, method and status.
type HttpSeries = (metrics::Counter, metrics::Histogram);

/// Route → (method, status) → handles. Looking a series up in the recorder's registry builds a
/// key and hashes its labels (~4.5 k instructions per request under callgrind); a handle found
/// here is a clone of two `Arc`s. Bounded like the series themselves: route templates × methods
/// × status codes.
type HttpSeriesCache = RwLock<HashMap<String, HashMap<(&'static str, u16), HttpSeries>>>;

static HTTP_SERIES: OnceLock<HttpSeriesCache> = OnceLock::new();

impl HttpLabels {
    pub fn of(req: &Request) -> Self {
        Self {
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: method_label(req.method()),
        }
    }

    fn route(&self) -> &str {
        self.route.as_ref().map_or("unmatched", MatchedPath::as_str)
    }

    /// Counts the request and records its latency.
    pub fn record(self, status: StatusCode, elapsed: Duration) {
        let (counter, histogram) = self.series(status);
        histogram.record(elapsed);
        counter.increment(1);
    }

    fn series(&self, status: StatusCode) -> HttpSeries {
        // Handles taken before the recorder is installed would be no-ops for ever: not cached.
        if HANDLE.get().is_none() {
            return self.register(status);
        }
        let cache = HTTP_SERIES.get_or_init(Default::default);
        let key = (self.method, status.as_u16());
        let cached = cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(self.route())
            .and_then(|by_status| by_status.get(&key).cloned());
        cached.unwrap_or_else(|| {
            let series = self.register(status);
            cache
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(self.route().to_owned())
                .or_default()
                .insert(key, series.clone());
            series
        })
    }

    fn register(&self, status: StatusCode) -> HttpSeries {
        let labels = vec![
            Label::new("route", self.route().to_owned()),
            Label::from_static_parts("method", self.method),
            Label::new("status", status_label(status)),
        ];
        (
            metrics::counter!(HTTP_REQUESTS, labels.clone()),
            metrics::histogram!(HTTP_DURATION, labels),
        )
    }
}

fn status_label(status: StatusCode) -> SharedString {
    let common = match status.as_u16() {
        200 => "200",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => return SharedString::from(status.as_str().to_owned()),
    };
    SharedString::const_str(common)
}

/// The method as a static string (`other` for extension methods).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A verification was created (`purpose`: its purpose's name).
pub fn verification_started(purpose: &'static str) {
    metrics::counter!(VERIFICATIONS_STARTED, "purpose" => purpose).increment(1);
}

/// A verification ended (exactly once per verification): `status` is its terminal status;
/// approvals and fraud reports are counted by `purpose`, everything else by `reason`.
pub fn verification_ended(status: &'static str, purpose: &'static str, reason: &'static str) {
    match status {
        "approved" => metrics::counter!(VERIFICATIONS_APPROVED, "purpose" => purpose).increment(1),
        "fraud_reported" => {
            metrics::counter!(VERIFICATIONS_FRAUD_REPORTED, "purpose" => purpose).increment(1)
        }
        _ => metrics::counter!(VERIFICATIONS_FAILED, "reason" => reason).increment(1),
    }
}

/// A provider webhook was refused before it changed anything (`reason`: why).
pub fn signature_failure(reason: &'static str) {
    metrics::counter!(SIGNATURE_FAILURES, "reason" => reason).increment(1);
}

/// One provider REST request: `outcome` is `ok`, `rejected` (4xx) or `failed` (5xx, timeout,
/// no connection).
pub fn provider_request(operation: &'static str, outcome: &'static str, elapsed: Duration) {
    let labels = [("operation", operation), ("outcome", outcome)];
    metrics::counter!(PROVIDER_REQUESTS, &labels).increment(1);
    metrics::histogram!(PROVIDER_DURATION, &labels).record(elapsed);
}

/// One account's attempt at placing a call (`account`: the configured name).
pub fn provider_call(account: &str, outcome: &'static str) {
    metrics::counter!(PROVIDER_CALLS, "account" => account.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A Redis command failed; `source` says where the failure surfaced (`api`, `webhook`).
pub fn redis_error(source: &'static str, error: &redis::RedisError) {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connection_dropped() || error.is_connection_refusal() || error.is_io_error()
    {
        "connection"
    } else {
        "other"
    };
    metrics::counter!(REDIS_ERRORS, "source" => source, "kind" => kind).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_gives_the_same_recorder() {
        let a: *const PrometheusHandle = install();
        let b: *const PrometheusHandle = install();
        assert_eq!(a, b);
    }

    #[test]
    fn every_family_has_help_and_alert_counters_start_at_zero() {
        install();
        // Families without a series are not rendered: give these two one (at 0).
        metrics::counter!(CALLS_RATE_LIMITED, "limit" => "number").increment(0);
        metrics::counter!(EVENTS_DELIVERED, "result" => "success").increment(0);
        let text = install().render();
        for family in [
            SIGNATURE_FAILURES,
            PROVIDER_MISCONFIGURED,
            REDIS_ERRORS,
            RECONCILIATIONS,
            CALLS_RATE_LIMITED,
            EVENTS_DELIVERED,
        ] {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
        }
        // Every family rendered has HELP text.
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let family = line.split(' ').nth(2).unwrap();
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
        }
        assert!(
            text.contains(&format!("\n{PROVIDER_MISCONFIGURED} ")),
            "{text}"
        );
        assert!(text.contains(&format!("{EVENTS_DELIVERED}{{result=\"gave_up\"}}")));
    }
}
