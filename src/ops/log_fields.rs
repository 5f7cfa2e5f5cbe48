//! How the text log format renders fields: exactly as `tracing_subscriber`'s default, but a plain
//! string field is written directly. The formatter renders a span's fields when the span opens,
//! so every request pays for its span's route, method and id; through the default visitor each
//! `&str` goes through `Debug` escaping, character by character (~3 k instructions per field
//! under callgrind). A value that `Debug` would not escape gives the same bytes either way;
//! anything else (messages, errors, numbers, strings needing escapes) goes to the default visitor.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// The text format's field formatter (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct LeanFields;

impl<'w> FormatFields<'w> for LeanFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = LeanVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct LeanVisitor<'w> {
    writer: Writer<'w>,
    is_empty: bool,
    result: fmt::Result,
}

impl LeanVisitor<'_> {
    /// Lets the default visitor render one field, continuing our padding state.
    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut inner = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut inner);
        self.result = inner.finish();
        self.is_empty = false;
    }

    /// `name="value"`, styled as the default visitor styles it.
    fn write_plain(&mut self, name: &str, value: &str) -> fmt::Result {
        let w = &mut self.writer;
        if !self.is_empty {
            w.write_str(" ")?;
        }
        self.is_empty = false;
        if w.has_ansi_escapes() {
            w.write_str("\x1b[3m")?;
            w.write_str(name)?;
            w.write_str("\x1b[0m\x1b[2m=\x1b[0m\"")?;
        } else {
            w.write_str(name)?;
            w.write_str("=\"")?;
        }
        w.write_str(value)?;
        w.write_str("\"")
    }
}

/// Printable ASCII that `Debug` for `str` leaves as it is (it escapes `"` and `\`).
fn needs_no_escape(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for LeanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name != "message"
            && !name.starts_with("r#")
            && !name.starts_with("log.")
            && needs_no_escape(value)
        {
            self.result = self.write_plain(name, value);
        } else {
            self.delegate(|v| v.record_str(field, value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_ok() {
            self.delegate(|v| v.record_error(field, value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.delegate(|v| v.record_debug(field, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::format::DefaultFields;

    /// Renders one event's fields with `formatter`.
    fn render(formatter: impl for<'w> FormatFields<'w> + Send + Sync + 'static) -> String {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(String::new()));
        struct Capture<F>(F, Arc<Mutex<String>>);
        impl<S: tracing::Subscriber, F: for<'w> FormatFields<'w> + 'static>
            tracing_subscriber::Layer<S> for Capture<F>
        {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let mut s = self.1.lock().unwrap();
                self.0.format_fields(Writer::new(&mut *s), event).unwrap();
            }
        }
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(Capture(formatter, out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let error = std::io::Error::other("boom");
            tracing::info!(
                route = "/telephony/twilio/{id}/gather",
                id = "abc-123_XYZ:/.=",
                quoted = "say \"hi\"\\",
                spaced = "two words",
                unicode = "caf\u{e9}\n",
                empty = "",
                n = 5,
                shown = %"display",
                %error,
                "a {} message",
                "formatted"
            );
        });
        out.lock().unwrap().clone()
    }

    #[test]
    fn renders_exactly_as_the_default_formatter() {
        let ours = render(LeanFields);
        assert_eq!(ours, render(DefaultFields::new()));
        assert!(
            ours.contains(r#"route="/telephony/twilio/{id}/gather""#),
            "{ours}"
        );
    }
}
