//! Telnyx TeXML as Telnyx documents it (docs/PROVIDERS.md#telnyx-relied-on-behaviour): the
//! verbs are TwiML's, but `<Gather>` knows only the attributes Telnyx lists. `finishOnKey` takes
//! `0-9`, `#` or `*` and defaults to `#`; an empty value is not documented, so it is ignored and
//! the default applies — `#` then ends input and is not part of `Digits`. There is no
//! `actionOnEmptyResult`: a gather without digits falls through to the next verb. The action is
//! requested with the TeXML application's method (here POST), not a `method` attribute.

use super::twiml::{Gather, Method, Verb};

/// `verbs` as a Telnyx call plays them: undocumented `<Gather>` attributes ignored.
pub fn documented(verbs: Vec<Verb>) -> Vec<Verb> {
    verbs
        .into_iter()
        .map(|verb| match verb {
            Verb::Gather(gather) => Verb::Gather(documented_gather(gather)),
            other => other,
        })
        .collect()
}

fn documented_gather(gather: Gather) -> Gather {
    Gather {
        // `None` only comes from `finishOnKey=""`, which Telnyx does not document.
        finish_on_key: gather.finish_on_key.or(Some('#')),
        action_on_empty_result: false,
        method: Method::Post,
        ..gather
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twiml::parse;

    fn gather(document: &str) -> Gather {
        match documented(parse(document).unwrap()).remove(0) {
            Verb::Gather(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_finish_on_key_and_action_on_empty_result_are_ignored() {
        let g = gather(
            r#"<Response><Gather numDigits="1" finishOnKey="" actionOnEmptyResult="true" method="GET"/></Response>"#,
        );
        assert_eq!(g.finish_on_key, Some('#'));
        assert!(!g.action_on_empty_result);
        assert_eq!(g.method, Method::Post);
    }

    #[test]
    fn a_documented_finish_on_key_is_kept() {
        let g = gather(r#"<Response><Gather numDigits="1" finishOnKey="*"/></Response>"#);
        assert_eq!(g.finish_on_key, Some('*'));
        assert_eq!(g.num_digits, Some(1));
    }
}
