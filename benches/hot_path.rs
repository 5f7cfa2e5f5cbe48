//! Criterion micro-benchmarks of the keypress webhook's CPU work: the Twilio signature check
//! and the TwiML answers. `cargo bench --bench hot_path` (not run by `cargo test`).

use std::hint::black_box;

use callverify::call::prompts::{Closing, Preface};
use callverify::provider::twilio::signature::{compute_signature, validate_form};
use callverify::provider::twilio::twiml::Twiml;
use callverify::verification::Purpose;
use criterion::{Criterion, criterion_group, criterion_main};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const URL: &str = "https://ivr.example.com/telephony/twilio/\
0123456789abcdef0123456789abcdef0123456789abcdef/gather?step=prompt";

/// What Twilio posts with a keypress.
fn keypress_params() -> Vec<(String, String)> {
    [
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "in-progress"),
        ("Called", "+14255551234"),
        ("Caller", "+15005550006"),
        ("Digits", "5"),
        ("Direction", "outbound-api"),
        ("FinishedOnKey", ""),
        ("From", "+15005550006"),
        ("To", "+14255551234"),
        ("msg", "Gather End"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn signature(c: &mut Criterion) {
    let params = keypress_params();
    let good = compute_signature(TOKEN, URL, &params);
    let bad = compute_signature("another-token", URL, &params);
    c.bench_function("signature/validate_form valid", |b| {
        b.iter(|| validate_form(black_box(TOKEN), black_box(&good), black_box(URL), &params))
    });
    c.bench_function("signature/validate_form forged (all URL variants)", |b| {
        b.iter(|| validate_form(black_box(TOKEN), black_box(&bad), black_box(URL), &params))
    });
}

fn twiml(c: &mut Criterion) {
    let twiml = Twiml::new("en-US").unwrap();
    c.bench_function("twiml/prompt (re-prompt after a wrong key)", |b| {
        b.iter(|| {
            twiml.prompt(
                black_box("en-US"),
                Purpose::Registration,
                Some(Preface::InvalidKey),
                black_box(URL),
                5,
            )
        })
    });
    c.bench_function("twiml/goodbye (approved)", |b| {
        b.iter(|| twiml.goodbye(black_box("nl-NL"), Closing::Approved))
    });
}

criterion_group!(benches, signature, twiml);
criterion_main!(benches);
