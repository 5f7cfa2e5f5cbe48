//! TwiML voice documents parsed into the verbs the simulator can play (docs/PROVIDERS.md#twilio-twiml).
//!
//! Parsing is strict where Twilio is strict (root `<Response>`, well-formed XML, nothing before
//! the XML declaration → error 12100) and lenient elsewhere: a verb the simulator does not play
//! (`<Dial>`, `<Record>`…) is kept as [`Verb::Unsupported`] so the transcript can show it.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// HTTP method of a webhook request; Twilio only knows these two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// Twilio's rule: anything but `GET` (case-insensitive) means the default, `POST`.
    pub fn parse_or_post(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("GET") => Method::Get,
            _ => Method::Post,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verb {
    Say {
        text: String,
        language: String,
        voice: Option<String>,
        /// How many times the text is spoken (`loop`; 0 = "until the call ends", capped).
        repeat: u32,
    },
    Play {
        url: String,
        repeat: u32,
    },
    Pause {
        secs: u32,
    },
    Gather(Gather),
    Redirect {
        url: String,
        method: Method,
    },
    Hangup,
    Reject {
        reason: String,
    },
    /// A verb the simulator does not play; the call moves on to the next one.
    Unsupported(String),
}

/// `<Gather>` with Twilio's defaults applied (docs/PROVIDERS.md#twilio-gather table).
#[derive(Clone, Debug, PartialEq)]
pub struct Gather {
    /// `None` = the current document's URL.
    pub action: Option<String>,
    pub method: Method,
    /// `None` = unlimited.
    pub num_digits: Option<usize>,
    /// `None` when `finishOnKey=""`: input then ends only by timeout or `numDigits`.
    pub finish_on_key: Option<char>,
    pub timeout_secs: u32,
    pub action_on_empty_result: bool,
    /// False for `input="speech"`: key presses are then ignored.
    pub accepts_dtmf: bool,
    /// Nested `<Say>`, `<Play>` and `<Pause>`, played while waiting for keys.
    pub prompt: Vec<Verb>,
}

/// Why a document is not TwiML; the call then ends with Twilio's application error 12100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document parse failure: {0}")]
pub struct ParseError(pub String);

/// A `loop` of 0 means "until the call ends"; a simulated callee stops listening after this many.
const MAX_REPEAT: u32 = 10;

pub fn parse(document: &str) -> Result<Vec<Verb>, ParseError> {
    // Twilio rejects whitespace before the declaration (docs/PROVIDERS.md#twilio-webhook-timeouts, error 12100).
    if document.trim_start().starts_with("<?xml") && !document.starts_with("<?xml") {
        return Err(ParseError("content before the XML declaration".into()));
    }
    let mut reader = Reader::from_str(document);
    loop {
        match next(&mut reader)? {
            Event::Start(e) if e.name().as_ref() == "Response" => {
                let verbs = parse_children(&mut reader, "Response", false)?;
                expect_eof(&mut reader)?;
                return Ok(verbs);
            }
            Event::Empty(e) if e.name().as_ref() == "Response" => {
                expect_eof(&mut reader)?;
                return Ok(Vec::new());
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Text(t) if t.xml10_content().trim().is_empty() => {}
            Event::Eof => return Err(ParseError("empty document".into())),
            _ => return Err(ParseError("the root element must be <Response>".into())),
        }
    }
}

fn next<'a>(reader: &mut Reader<&'a [u8]>) -> Result<Event<'a>, ParseError> {
    reader
        .read_event()
        .map_err(|e| ParseError(format!("at byte {}: {e}", reader.error_position())))
}

fn expect_eof(reader: &mut Reader<&[u8]>) -> Result<(), ParseError> {
    loop {
        match next(reader)? {
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.xml10_content().trim().is_empty() => {}
            _ => return Err(ParseError("content after </Response>".into())),
        }
    }
}

/// Verbs up to the closing tag of `parent`; `in_gather` limits them to what may nest there.
fn parse_children(
    reader: &mut Reader<&[u8]>,
    parent: &str,
    in_gather: bool,
) -> Result<Vec<Verb>, ParseError> {
    let mut verbs = Vec::new();
    loop {
        let (element, has_body) = match next(reader)? {
            Event::Start(e) => (e.into_owned(), true),
            Event::Empty(e) => (e.into_owned(), false),
            Event::End(_) => return Ok(verbs),
            Event::Eof => return Err(ParseError(format!("<{parent}> is not closed"))),
            Event::Text(t) if t.xml10_content().trim().is_empty() => continue,
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                return Err(ParseError(format!("stray text inside <{parent}>")));
            }
            _ => continue,
        };
        let name = element.name().as_ref().to_owned();
        let body = if has_body && name != "Gather" {
            text_until_end(reader, &name)?
        } else {
            String::new()
        };
        let verb = verb(reader, &element, &name, body, has_body)?;
        if in_gather
            && !matches!(
                verb,
                Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. }
            )
        {
            return Err(ParseError(format!("<{name}> cannot be nested in <Gather>")));
        }
        verbs.push(verb);
    }
}

fn verb(
    reader: &mut Reader<&[u8]>,
    element: &BytesStart<'_>,
    name: &str,
    body: String,
    has_body: bool,
) -> Result<Verb, ParseError> {
    let attr = |key: &str| attribute(element, key);
    let repeat = || match attr("loop").map(|v| v.trim().parse::<u32>()) {
        Some(Ok(0)) => Ok(MAX_REPEAT),
        Some(Ok(n)) => Ok(n.min(MAX_REPEAT)),
        Some(Err(_)) => Err(ParseError(format!("<{name}> has an invalid loop"))),
        None => Ok(1),
    };
    Ok(match name {
        "Say" => Verb::Say {
            text: body,
            language: attr("language").unwrap_or_else(|| "en-US".into()),
            voice: attr("voice"),
            repeat: repeat()?,
        },
        "Play" => Verb::Play {
            url: body.trim().to_owned(),
            repeat: repeat()?,
        },
        "Pause" => Verb::Pause {
            secs: match attr("length") {
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| ParseError("<Pause> has an invalid length".into()))?,
                None => 1,
            },
        },
        "Gather" => {
            let prompt = if has_body {
                parse_children(reader, "Gather", true)?
            } else {
                Vec::new()
            };
            Verb::Gather(gather(element, prompt)?)
        }
        "Redirect" => Verb::Redirect {
            url: body.trim().to_owned(),
            method: Method::parse_or_post(attr("method").as_deref()),
        },
        "Hangup" => Verb::Hangup,
        "Reject" => Verb::Reject {
            reason: attr("reason").unwrap_or_else(|| "rejected".into()),
        },
        other => Verb::Unsupported(other.to_owned()),
    })
}

fn gather(element: &BytesStart<'_>, prompt: Vec<Verb>) -> Result<Gather, ParseError> {
    let attr = |key: &str| attribute(element, key);
    let invalid = |what: &str| ParseError(format!("<Gather> has an invalid {what}"));
    let finish_on_key = match attr("finishOnKey") {
        None => Some('#'),
        Some(v) if v.is_empty() => None,
        Some(v) => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '#' || c == '*' => Some(c),
                _ => return Err(invalid("finishOnKey")),
            }
        }
    };
    let num_digits = match attr("numDigits") {
        None => None,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(invalid("numDigits")),
        },
    };
    let timeout_secs = match attr("timeout") {
        None => 5,
        Some(v) => v.trim().parse().map_err(|_| invalid("timeout"))?,
    };
    Ok(Gather {
        action: attr("action").filter(|a| !a.trim().is_empty()),
        method: Method::parse_or_post(attr("method").as_deref()),
        num_digits,
        finish_on_key,
        timeout_secs,
        action_on_empty_result: attr("actionOnEmptyResult")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        accepts_dtmf: attr("input").is_none_or(|v| v.split_whitespace().any(|i| i == "dtmf")),
        prompt,
    })
}

fn attribute(element: &BytesStart<'_>, key: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|v| v.into_owned())
}

/// The text of a verb such as `<Say>`, entities resolved, up to its closing tag.
fn text_until_end(reader: &mut Reader<&[u8]>, name: &str) -> Result<String, ParseError> {
    let mut text = String::new();
    // `<Say>` may hold SSML; the simulator speaks only its text, so nested tags are skipped.
    let mut depth = 0usize;
    loop {
        match next(reader)? {
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .ok_or_else(|| ParseError(format!("unknown entity in <{name}>")))?
                        .to_owned(),
                };
                text.push_str(&resolved);
            }
            Event::Start(_) => depth += 1,
            Event::End(_) if depth > 0 => depth -= 1,
            Event::End(_) => return Ok(text.split_whitespace().collect::<Vec<_>>().join(" ")),
            Event::Eof => return Err(ParseError(format!("<{name}> is not closed"))),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_PROMPT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Gather input="dtmf" numDigits="1" finishOnKey="" timeout="5" actionOnEmptyResult="true" action="/gather?step=prompt&amp;n=1" method="POST"><Say language="en-US">Hello, press the pound key.</Say></Gather><Redirect>/next</Redirect></Response>"#;

    #[test]
    fn our_servers_prompt_parses_with_every_attribute() {
        let verbs = parse(OUR_PROMPT).unwrap();
        let Verb::Gather(g) = &verbs[0] else {
            panic!("{verbs:?}")
        };
        assert_eq!(g.action.as_deref(), Some("/gather?step=prompt&n=1"));
        assert_eq!(g.method, Method::Post);
        assert_eq!(g.num_digits, Some(1));
        assert_eq!(g.finish_on_key, None);
        assert_eq!(g.timeout_secs, 5);
        assert!(g.action_on_empty_result && g.accepts_dtmf);
        assert_eq!(
            g.prompt,
            vec![Verb::Say {
                text: "Hello, press the pound key.".into(),
                language: "en-US".into(),
                voice: None,
                repeat: 1
            }]
        );
        assert_eq!(
            verbs[1],
            Verb::Redirect {
                url: "/next".into(),
                method: Method::Post
            }
        );
    }

    #[test]
    fn gather_defaults_follow_twilio() {
        let verbs = parse("<Response><Gather/></Response>").unwrap();
        let Verb::Gather(g) = &verbs[0] else { panic!() };
        assert_eq!(
            (g.finish_on_key, g.num_digits, g.timeout_secs),
            (Some('#'), None, 5)
        );
        assert!(!g.action_on_empty_result && g.action.is_none() && g.prompt.is_empty());
        let speech = parse(r#"<Response><Gather input="speech"/></Response>"#).unwrap();
        assert!(matches!(&speech[0], Verb::Gather(g) if !g.accepts_dtmf));
    }

    #[test]
    fn say_text_resolves_entities_and_python_style_empty_tags_work() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say voice="woman" language="fr" loop="2">Tom &amp; <emphasis>Jerry</emphasis> &#233;t&#xE9;</Say>
  <Pause length="3" />
  <Play>https://x.test/a.mp3</Play>
  <Reject reason="busy" />
  <Hangup />
</Response>"#;
        let verbs = parse(doc).unwrap();
        assert_eq!(
            verbs,
            vec![
                Verb::Say {
                    text: "Tom & Jerry été".into(),
                    language: "fr".into(),
                    voice: Some("woman".into()),
                    repeat: 2
                },
                Verb::Pause { secs: 3 },
                Verb::Play {
                    url: "https://x.test/a.mp3".into(),
                    repeat: 1
                },
                Verb::Reject {
                    reason: "busy".into()
                },
                Verb::Hangup,
            ]
        );
    }

    #[test]
    fn unknown_verbs_are_kept_and_redirect_method_is_read() {
        let verbs = parse(
            r#"<Response><Dial>+15551234567</Dial><Redirect method="GET">a?b=1</Redirect></Response>"#,
        )
        .unwrap();
        assert_eq!(verbs[0], Verb::Unsupported("Dial".into()));
        assert_eq!(
            verbs[1],
            Verb::Redirect {
                url: "a?b=1".into(),
                method: Method::Get
            }
        );
    }

    #[test]
    fn invalid_documents_are_parse_failures() {
        for doc in [
            "",
            "not xml",
            "<Foo/>",
            "<Response><Say>unclosed</Response>",
            "<Response><Say>a</Say>",
            "\n<?xml version=\"1.0\"?><Response/>",
            "<Response/><Response/>",
            "<Response><Gather><Hangup/></Gather></Response>",
            r#"<Response><Gather finishOnKey="ab"/></Response>"#,
            r#"<Response><Gather numDigits="0"/></Response>"#,
            r#"<Response><Pause length="x"/></Response>"#,
            "<Response>loose text</Response>",
        ] {
            assert!(parse(doc).is_err(), "accepted {doc:?}");
        }
        assert_eq!(parse("<Response/>").unwrap(), vec![]);
    }
}
