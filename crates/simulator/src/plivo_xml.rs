//! Plivo XML (docs/PROVIDERS.md#plivo) played as the verbs the simulator knows: `<Speak>` is
//! spoken like `<Say>`, `<GetDigits>` collects keys like `<Gather>` (default `finishOnKey`
//! `#`; `none` or empty for none; no digits → the next element), `<Wait length>` pauses,
//! `<Play>`, `<Redirect>` and `<Hangup>` are as in TwiML. The document is rewritten element by
//! element into TwiML terms and parsed by `twiml`, so both share one strict parser; a TwiML-only
//! element (`<Say>`, `<Gather>`, `<Pause>`) in a Plivo document is not Plivo and plays as
//! unsupported.

use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::reader::Reader;
use quick_xml::writer::Writer;

use super::twiml::{self, ParseError, Verb};

fn rename(name: &str) -> String {
    match name {
        "Speak" => "Say".into(),
        "GetDigits" => "Gather".into(),
        "Wait" => "Pause".into(),
        "Say" | "Gather" | "Pause" => format!("NotPlivo{name}"),
        other => other.into(),
    }
}

fn translate_start(e: &BytesStart<'_>) -> Result<BytesStart<'static>, ParseError> {
    let qname = e.name();
    let name: String = AsRef::<str>::as_ref(&qname).to_owned();
    let mut out = BytesStart::new(rename(&name));
    for attr in e.attributes() {
        let attr = attr.map_err(|e| ParseError(e.to_string()))?;
        let key: String = AsRef::<str>::as_ref(&attr.key).to_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| ParseError(e.to_string()))?
            .into_owned();
        let value = if name == "GetDigits" && key == "finishOnKey" && value == "none" {
            String::new()
        } else {
            value
        };
        out.push_attribute((key.as_str(), value.as_str()));
    }
    Ok(out)
}

pub fn parse(document: &str) -> Result<Vec<Verb>, ParseError> {
    if document.trim_start().starts_with("<?xml") && !document.starts_with("<?xml") {
        return Err(ParseError("content before the XML declaration".into()));
    }
    let mut reader = Reader::from_str(document);
    let mut writer = Writer::new(Vec::new());
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ParseError(format!("at byte {}: {e}", reader.error_position())))?;
        let written = match event {
            Event::Start(e) => writer.write_event(Event::Start(translate_start(&e)?)),
            Event::Empty(e) => writer.write_event(Event::Empty(translate_start(&e)?)),
            Event::End(e) => {
                let qname = e.name();
                let name = rename(qname.as_ref());
                writer.write_event(Event::End(BytesEnd::new(name)))
            }
            Event::Eof => break,
            other => writer.write_event(other),
        };
        written.map_err(|e| ParseError(e.to_string()))?;
    }
    let translated =
        String::from_utf8(writer.into_inner()).map_err(|_| ParseError("not UTF-8".into()))?;
    twiml::parse(&translated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plivo_elements_play_as_their_twiml_counterparts() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><GetDigits action="https://x/g?step=prompt&amp;a=1" method="POST" timeout="5" numDigits="1" finishOnKey="none" retries="1" redirect="true"><Speak language="nl-NL" voice="WOMAN">Druk op hekje.</Speak></GetDigits><Redirect method="POST">https://x/g</Redirect></Response>"#;
        let verbs = parse(doc).unwrap();
        let Verb::Gather(g) = &verbs[0] else {
            panic!("{verbs:?}")
        };
        assert_eq!(g.finish_on_key, None);
        assert_eq!(g.action.as_deref(), Some("https://x/g?step=prompt&a=1"));
        assert!(
            matches!(&g.prompt[0], Verb::Say { text, language, .. } if text == "Druk op hekje." && language == "nl-NL")
        );
        assert!(matches!(verbs[1], Verb::Redirect { .. }));
    }

    #[test]
    fn twiml_verbs_are_not_plivo() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say><Hangup/></Response>"#;
        let verbs = parse(doc).unwrap();
        assert_eq!(verbs[0], Verb::Unsupported("NotPlivoSay".into()));
    }
}
