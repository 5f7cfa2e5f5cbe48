//! TwiML answers, rendered from the templates in `twiml/` with the neutral prompts of
//! `src/call/prompts.rs`. Templates
//! and prompts are compiled in and every answer is rendered once at start-up — with holes for
//! the per-call values (a gather's action URL and timeout) — so answering a webhook copies text
//! and escapes one URL instead of running the template engine. Every value is XML-escaped.

use std::collections::HashMap;

#[cfg(doc)]
use minijinja::HtmlEscape;
use minijinja::{AutoEscape, Environment, Value, context};

use crate::call::Purpose;
use crate::call::prompts::{self, Answer, Closing, Preface, Prompts};

pub struct Twiml {
    env: Environment<'static>,
    prompts: HashMap<&'static str, &'static Prompts>,
    default_locale: &'static str,
    /// Every gather answer per (locale, variant), rendered at start-up.
    gathers: HashMap<(&'static str, Gather), Prepared>,
    /// Every goodbye per (locale, closing), rendered at start-up (they have no per-call values).
    goodbyes: HashMap<(&'static str, Closing), String>,
}

/// Which `<Gather>` answer: a prompt (purpose, optional preface) or the fraud confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Gather {
    Prompt(&'static str, Option<Preface>),
    ConfirmFraud,
}

/// Stand-ins rendered where the per-call values go; private-use characters, so no prompt text
/// contains them and HTML escaping leaves them alone.
/// Hangs up without a word (an answering machine answered).
const HANGUP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Hangup/></Response>";

const ACTION_HOLE: &str = "\u{E000}action\u{E000}";
const TIMEOUT_HOLE: &str = "\u{E000}timeout\u{E000}";

/// A rendered answer cut at its holes.
#[derive(Debug)]
struct Prepared {
    parts: Vec<Part>,
    text_len: usize,
}

#[derive(Debug)]
enum Part {
    Text(Box<str>),
    Action,
    Timeout,
}

impl Prepared {
    fn cut(mut rendered: &str) -> Self {
        let mut parts = Vec::new();
        let text_len = rendered.len();
        loop {
            let next = [(ACTION_HOLE, Part::Action), (TIMEOUT_HOLE, Part::Timeout)]
                .into_iter()
                .filter_map(|(hole, part)| rendered.find(hole).map(|at| (at, hole, part)))
                .min_by_key(|(at, _, _)| *at);
            let Some((at, hole, part)) = next else {
                parts.push(Part::Text(rendered.into()));
                break;
            };
            parts.push(Part::Text(rendered[..at].into()));
            parts.push(part);
            rendered = &rendered[at + hole.len()..];
        }
        Self { parts, text_len }
    }

    /// The answer with `action` (escaped exactly as the template engine would) and `timeout`.
    fn fill(&self, action: &str, timeout_secs: u32) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(self.text_len + 2 * action.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Action => escape_into(&mut out, action),
                Part::Timeout => {
                    let _ = write!(out, "{timeout_secs}");
                }
            }
        }
        out
    }
}

/// [`minijinja::HtmlEscape`]'s output (what the templates produce), copying runs of plain characters at
/// once instead of formatting character by character.
fn escape_into(out: &mut String, text: &str) {
    let mut plain_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            b'/' => "&#x2f;",
            _ => continue,
        };
        out.push_str(&text[plain_from..at]);
        out.push_str(entity);
        plain_from = at + 1;
    }
    out.push_str(&text[plain_from..]);
}

impl Twiml {
    /// Prepares templates and prompts; `default_locale` must be one of [`Twiml::locales`].
    pub fn new(default_locale: &str) -> Result<Self, String> {
        Self::with_templates(
            default_locale,
            include_str!("../../../twiml/gather.xml"),
            include_str!("../../../twiml/goodbye.xml"),
        )
    }

    /// The same answers from another markup's templates (same variables: Plivo XML).
    pub fn with_templates(
        default_locale: &str,
        gather: &'static str,
        goodbye: &'static str,
    ) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_template("gather.xml", gather)
            .map_err(|e| e.to_string())?;
        env.add_template("goodbye.xml", goodbye)
            .map_err(|e| e.to_string())?;
        let prompts = prompts::all().iter().map(|(l, p)| (*l, p)).collect();
        let default_locale = prompts::locales()
            .find(|l| *l == default_locale)
            .ok_or_else(|| format!("unsupported default locale {default_locale:?}"))?;
        let mut twiml = Self {
            env,
            prompts,
            default_locale,
            gathers: HashMap::new(),
            goodbyes: HashMap::new(),
        };
        twiml.prepare();
        Ok(twiml)
    }

    /// Renders every answer of every locale once, holes for the per-call values.
    fn prepare(&mut self) {
        let (action, timeout) = (ACTION_HOLE, Value::from(TIMEOUT_HOLE));
        for locale in prompts::locales() {
            for purpose in [
                Purpose::Registration,
                Purpose::SignIn,
                Purpose::PasswordReset,
            ] {
                for preface in [None, Some(Preface::InvalidKey), Some(Preface::NoKey)] {
                    let rendered =
                        self.render_prompt(locale, purpose, preface, action, timeout.clone());
                    self.gathers.insert(
                        (locale, Gather::Prompt(purpose.as_str(), preface)),
                        Prepared::cut(&rendered),
                    );
                }
            }
            let rendered = self.render_confirm_fraud(locale, action, timeout.clone());
            self.gathers
                .insert((locale, Gather::ConfirmFraud), Prepared::cut(&rendered));
            for closing in Closing::ALL {
                let rendered = self.render_goodbye(locale, closing);
                self.goodbyes.insert((locale, closing), rendered);
            }
        }
    }

    /// The supported locale we speak for `locale` (the default for any other).
    fn spoken(&self, locale: &str) -> &'static str {
        self.prompts
            .get_key_value(locale)
            .map_or(self.default_locale, |(l, _)| *l)
    }

    fn prepared(&self, locale: &str, gather: Gather) -> &Prepared {
        &self.gathers[&(self.spoken(locale), gather)]
    }

    fn prompts(&self, locale: &str) -> &Prompts {
        self.prompts
            .get(locale)
            .unwrap_or_else(|| &self.prompts[self.default_locale])
    }

    /// The TwiML document for `answer`.
    pub fn render_answer(&self, answer: &Answer<'_>) -> String {
        match *answer {
            Answer::Prompt {
                locale,
                purpose,
                preface,
                action,
                timeout_secs,
            } => self.prompt(locale, purpose, preface, action, timeout_secs),
            Answer::ConfirmFraud {
                locale,
                action,
                timeout_secs,
            } => self.confirm_fraud(locale, action, timeout_secs),
            Answer::Goodbye { locale, closing } => self.goodbye(locale, closing),
            Answer::Hangup => HANGUP.to_owned(),
        }
    }

    /// Ask for a key: the purpose's prompt and the fraud hint, optionally after a preface.
    pub fn prompt(
        &self,
        locale: &str,
        purpose: Purpose,
        preface: Option<Preface>,
        action: &str,
        timeout_secs: u32,
    ) -> String {
        self.prepared(locale, Gather::Prompt(purpose.as_str(), preface))
            .fill(action, timeout_secs)
    }

    /// After `0`: ask for `#` to confirm the fraud report.
    pub fn confirm_fraud(&self, locale: &str, action: &str, timeout_secs: u32) -> String {
        self.prepared(locale, Gather::ConfirmFraud)
            .fill(action, timeout_secs)
    }

    /// Say the closing sentence and hang up.
    pub fn goodbye(&self, locale: &str, closing: Closing) -> String {
        self.goodbyes[&(self.spoken(locale), closing)].clone()
    }

    fn render_prompt(
        &self,
        locale: &str,
        purpose: Purpose,
        preface: Option<Preface>,
        action: &str,
        timeout: Value,
    ) -> String {
        let p = self.prompts(locale);
        let preface = preface.map(|pf| p.preface(pf));
        self.render(
            "gather.xml",
            context! { language => &p.language, voice => &p.voice, preface,
            prompt => p.ask(purpose), action => action.to_owned(), timeout },
        )
    }

    fn render_confirm_fraud(&self, locale: &str, action: &str, timeout: Value) -> String {
        let p = self.prompts(locale);
        self.render(
            "gather.xml",
            context! { language => &p.language, voice => &p.voice, preface => None::<String>,
            prompt => &p.confirm_fraud, action => action.to_owned(), timeout },
        )
    }

    fn render_goodbye(&self, locale: &str, closing: Closing) -> String {
        let message = self.prompts(locale).closing(closing);
        let p = self.prompts(locale);
        self.render(
            "goodbye.xml",
            context! { language => &p.language, voice => &p.voice, message },
        )
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        // Templates are compiled in and checked by tests, so rendering cannot fail at run time
        // short of a programming error; answer an apology-free hang-up rather than panic.
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, template = name, "TwiML template failed");
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Hangup/></Response>"
                    .to_owned()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::XmlVersion;
    use quick_xml::events::Event;

    /// An element's name, attributes and text.
    type El = (String, Vec<(String, String)>, String);

    /// Parses the document and returns its elements in order.
    fn elements(xml: &str) -> Vec<El> {
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        let mut reader = Reader::from_str(xml);
        let mut out: Vec<El> = Vec::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) => {
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            let key: &str = a.key.as_ref();
                            let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                            (key.to_owned(), value.into_owned())
                        })
                        .collect();
                    let qname = e.name();
                    let name: &str = qname.as_ref();
                    out.push((name.to_owned(), attrs, String::new()));
                }
                Event::Text(t) => {
                    if let Some(last) = out.last_mut() {
                        last.2.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                            .unwrap()
                            .to_owned(),
                    };
                    if let Some(last) = out.last_mut() {
                        last.2.push_str(&ch);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn attr<'a>(el: &'a El, name: &str) -> &'a str {
        &el.1.iter().find(|(k, _)| k == name).unwrap().1
    }

    #[test]
    fn the_prompt_gathers_the_pound_key_itself() {
        let t = Twiml::new("en-US").unwrap();
        let xml = t.prompt(
            "en-US",
            Purpose::Registration,
            None,
            "https://x/gather?step=prompt&a=<b>",
            5,
        );
        let els = elements(&xml);
        assert_eq!(els[0].0, "Response");
        let gather = &els[1];
        assert_eq!(gather.0, "Gather");
        assert_eq!(attr(gather, "finishOnKey"), "");
        assert_eq!(attr(gather, "numDigits"), "1");
        assert_eq!(attr(gather, "actionOnEmptyResult"), "true");
        assert_eq!(attr(gather, "action"), "https://x/gather?step=prompt&a=<b>");
        assert!(els[2].2.contains("press the pound key"));
        assert!(els[2].2.contains("press zero"));
        assert_eq!(els[3].0, "Redirect");
    }

    #[test]
    fn dutch_prompts_are_spoken_in_dutch() {
        let t = Twiml::new("en-US").unwrap();
        let xml = t.prompt("nl-NL", Purpose::SignIn, Some(Preface::InvalidKey), "/g", 5);
        let els = elements(&xml);
        assert_eq!(attr(&els[2], "language"), "nl-NL");
        assert!(els[2].2.contains("toets is niet geldig"));
        assert!(els[3].2.contains("hekje"));
    }

    #[test]
    fn goodbyes_hang_up() {
        let t = Twiml::new("en-US").unwrap();
        for c in Closing::ALL {
            let els = elements(&t.goodbye("en-US", c));
            assert_eq!(els.last().unwrap().0, "Hangup");
        }
    }

    #[test]
    fn prepared_answers_equal_what_the_templates_render() {
        let t = Twiml::new("nl-NL").unwrap();
        let action = "https://ivr.example/a/gather?step=prompt&x=<'\"/>";
        for locale in ["en-US", "nl-NL", "fr-FR"] {
            for purpose in [
                Purpose::Registration,
                Purpose::SignIn,
                Purpose::PasswordReset,
            ] {
                for preface in [None, Some(Preface::InvalidKey), Some(Preface::NoKey)] {
                    assert_eq!(
                        t.prompt(locale, purpose, preface, action, 7),
                        t.render_prompt(locale, purpose, preface, action, Value::from(7))
                    );
                }
            }
            assert_eq!(
                t.confirm_fraud(locale, action, 9),
                t.render_confirm_fraud(locale, action, Value::from(9))
            );
            assert_eq!(
                t.goodbye(locale, Closing::Apology),
                t.render_goodbye(locale, Closing::Apology)
            );
        }
    }

    #[test]
    fn urls_are_escaped_like_the_template_engine_does() {
        for text in ["", "plain", "a&b<c>d\"e'f/g", "&&//", "caf\u{e9}/&"] {
            let mut ours = String::new();
            escape_into(&mut ours, text);
            assert_eq!(ours, minijinja::HtmlEscape(text).to_string());
        }
    }

    #[test]
    fn an_unknown_default_locale_is_refused() {
        assert!(Twiml::new("fr-FR").is_err());
        assert!(Twiml::new("nl-NL").is_ok());
    }
}
