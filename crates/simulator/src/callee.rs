//! The simulated person at the other end: whether they pick up, and what they do at each
//! `<Gather>`.
//!
//! Unless a test scripts a number ([`super::Simulator::script`]), behaviour follows the
//! destination number's last two digits:
//!
//! | `To` ends in | callee behaviour                                               | final status |
//! |--------------|----------------------------------------------------------------|--------------|
//! | `00`         | line busy                                                      | `busy`       |
//! | `01`         | rings until the call's `Timeout`, never answers                | `no-answer`  |
//! | `02`         | voicemail: answers, never presses a key                        | `completed`  |
//! | `03`         | presses a wrong key (`5`) at the first gather, then `#`        | `completed`  |
//! | `04`         | reports fraud: `0` at the first gather, then `#` at the next   | `completed`  |
//! | `05`         | answers, then hangs up in the middle of the first prompt       | `completed`  |
//! | `06`         | the call cannot be connected                                   | `failed`     |
//! | anything else| answers and presses `#`                                        | `completed`  |
//!
//! Each `<Gather>` consumes the callee's next [`GatherResponse`]; once they are used up the
//! callee stays silent. Keys are pressed [`Behaviour::key_delay_secs`] (simulated) after the
//! gather starts, so a long prompt is interrupted (barge-in).

/// What the phone network does with the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pickup {
    /// Rings, then the callee answers.
    Answer,
    Busy,
    /// Rings until the call's `Timeout`.
    NoAnswer,
    /// The call cannot be connected (Twilio status `failed`).
    Fail,
    /// An answering machine picks up: answers, never presses a key; answering-machine
    /// detection (`MachineDetection`) reports it as `AnsweredBy=machine_end_beep`.
    Machine,
}

/// What the callee does during one `<Gather>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatherResponse {
    /// Presses these keys one after the other; `""` is silence.
    Press(String),
    /// Hangs up halfway through the gather's prompt.
    HangUp,
    /// Presses these keys and hangs up at once: the gather's action and the final status
    /// callback are sent together (they race).
    PressThenHangUp(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Behaviour {
    pub pickup: Pickup,
    /// One response per `<Gather>`, in order; silence after the last.
    pub responses: Vec<GatherResponse>,
    /// Simulated seconds from the start of a gather to the first key press.
    pub key_delay_secs: f64,
    /// The disorder this call meets (`None`: the simulator's run-wide chaos, if any).
    pub chaos: Option<super::Chaos>,
}

/// Long enough to hear a few words, shorter than a typical prompt: keys barge in.
const DEFAULT_KEY_DELAY_SECS: f64 = 1.5;

impl Behaviour {
    /// Answers and presses `keys[i]` at the i-th gather (`""` = stays silent there).
    pub fn presses<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            pickup: Pickup::Answer,
            responses: keys
                .into_iter()
                .map(|k| GatherResponse::Press(k.into()))
                .collect(),
            key_delay_secs: DEFAULT_KEY_DELAY_SECS,
            chaos: None,
        }
    }

    /// An answering machine (see [`Pickup::Machine`]).
    pub fn voicemail() -> Self {
        Self {
            pickup: Pickup::Machine,
            ..Self::silent()
        }
    }

    /// Presses `#` and hangs up at once: the keypress and the `completed` callback race.
    pub fn pound_then_hang_up() -> Self {
        Self {
            chaos: Some(super::Chaos {
                unordered_callbacks: true,
                ..super::Chaos::default()
            }),
            responses: vec![GatherResponse::PressThenHangUp("#".into())],
            ..Self::presses(Vec::<String>::new())
        }
    }

    /// This call meets `chaos`.
    pub fn with_chaos(mut self, chaos: super::Chaos) -> Self {
        self.chaos = Some(chaos);
        self
    }

    /// Answers and never presses a key (an answering machine).
    pub fn silent() -> Self {
        Self::presses(Vec::<String>::new())
    }

    pub fn busy() -> Self {
        Self::not_answering(Pickup::Busy)
    }

    pub fn no_answer() -> Self {
        Self::not_answering(Pickup::NoAnswer)
    }

    pub fn fails() -> Self {
        Self::not_answering(Pickup::Fail)
    }

    /// Answers and hangs up during the first gather's prompt.
    pub fn hangs_up_mid_prompt() -> Self {
        Self::silent().then_hang_up()
    }

    /// After the scripted responses, hangs up at the next gather.
    pub fn then_hang_up(mut self) -> Self {
        self.responses.push(GatherResponse::HangUp);
        self
    }

    /// Presses keys `secs` (simulated) after each gather starts.
    pub fn with_key_delay(mut self, secs: f64) -> Self {
        self.key_delay_secs = secs;
        self
    }

    fn not_answering(pickup: Pickup) -> Self {
        Self {
            pickup,
            ..Self::silent()
        }
    }

    /// The behaviour table in the module documentation.
    pub fn for_number(number: &str) -> Self {
        let suffix = number.len().checked_sub(2).and_then(|i| number.get(i..));
        match suffix {
            Some("00") => Self::busy(),
            Some("01") => Self::no_answer(),
            Some("02") => Self::silent(),
            Some("03") => Self::presses(["5", "#"]),
            Some("04") => Self::presses(["0", "#"]),
            Some("05") => Self::hangs_up_mid_prompt(),
            Some("06") => Self::fails(),
            _ => Self::presses(["#"]),
        }
    }
}

/// A callee during one call: works through its [`Behaviour`] one gather at a time, or is a
/// person at a virtual phone ([`crate::phone`]).
pub struct Callee {
    responses: std::collections::VecDeque<GatherResponse>,
    pub key_delay_secs: f64,
    person: Option<crate::phone::Line>,
}

impl Callee {
    pub fn new(behaviour: &Behaviour) -> Self {
        Self {
            responses: behaviour.responses.iter().cloned().collect(),
            // Chaos: the keys are already pressed when the gather starts (during the fetch).
            key_delay_secs: if behaviour.chaos.is_some_and(|c| c.keys_during_fetch) {
                0.0
            } else {
                behaviour.key_delay_secs.max(0.0)
            },
            person: None,
        }
    }

    /// A person at a virtual phone: their keys come from the line, not from a script.
    pub(crate) fn person(line: crate::phone::Line) -> Self {
        Self {
            person: Some(line),
            ..Self::new(&Behaviour::silent())
        }
    }

    pub(crate) fn line(&mut self) -> Option<&mut crate::phone::Line> {
        self.person.as_mut()
    }

    /// What the callee does at the next `<Gather>`: silence once the script is used up.
    pub fn next_response(&mut self) -> GatherResponse {
        self.responses
            .pop_front()
            .unwrap_or(GatherResponse::Press(String::new()))
    }
}

/// The keys one gather takes from what the callee presses (docs/PROVIDERS.md#twilio-gather).
#[derive(Debug, PartialEq, Eq)]
pub struct KeyInput {
    /// Sent as `Digits`: without the `finishOnKey`.
    pub digits: String,
    /// What the callee pressed before the gather stopped listening, `finishOnKey` included.
    pub pressed: String,
    /// The gather ended on `finishOnKey` or `numDigits`; otherwise it waits for its timeout.
    pub complete: bool,
    /// The `finishOnKey` that ended input, if any (Twilio's `FinishedOnKey` parameter).
    pub finished_on_key: Option<char>,
}

/// Keys after the gather completed are not heard by it (they are lost, as on a real call).
pub fn take_keys(keys: &str, finish_on_key: Option<char>, num_digits: Option<usize>) -> KeyInput {
    let mut input = KeyInput {
        digits: String::new(),
        pressed: String::new(),
        complete: false,
        finished_on_key: None,
    };
    for key in keys.chars() {
        input.pressed.push(key);
        if Some(key) == finish_on_key {
            input.complete = true;
            input.finished_on_key = Some(key);
            break;
        }
        input.digits.push(key);
        if num_digits.is_some_and(|n| input.digits.chars().count() >= n) {
            input.complete = true;
            break;
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_on_key_ends_input_and_is_not_a_digit() {
        let got = take_keys("12#3", Some('#'), None);
        assert_eq!((got.digits.as_str(), got.pressed.as_str()), ("12", "12#"));
        assert!(got.complete);
        assert_eq!(got.finished_on_key, Some('#'));
    }

    #[test]
    fn pound_is_a_digit_when_finish_on_key_is_empty() {
        let got = take_keys("#", None, Some(1));
        assert_eq!(got.digits, "#");
        assert!(got.complete && got.finished_on_key.is_none());
    }

    #[test]
    fn num_digits_completes_and_later_keys_are_lost() {
        let got = take_keys("123", None, Some(2));
        assert_eq!((got.digits.as_str(), got.pressed.as_str()), ("12", "12"));
        assert!(got.complete);
    }

    #[test]
    fn input_without_terminator_waits_for_the_timeout() {
        let got = take_keys("12", Some('#'), Some(4));
        assert_eq!(got.digits, "12");
        assert!(!got.complete);
        let only_pound = take_keys("#", Some('#'), None);
        assert!(only_pound.digits.is_empty() && only_pound.complete);
    }

    #[test]
    fn numbers_map_to_the_documented_behaviours() {
        assert_eq!(Behaviour::for_number("+15551230000").pickup, Pickup::Busy);
        assert_eq!(
            Behaviour::for_number("+15551230001").pickup,
            Pickup::NoAnswer
        );
        assert!(Behaviour::for_number("+15551230002").responses.is_empty());
        assert_eq!(
            Behaviour::for_number("+15551230004").responses,
            vec![
                GatherResponse::Press("0".into()),
                GatherResponse::Press("#".into())
            ]
        );
        assert_eq!(
            Behaviour::for_number("+15551230005").responses,
            vec![GatherResponse::HangUp]
        );
        assert_eq!(Behaviour::for_number("+15551230006").pickup, Pickup::Fail);
        assert_eq!(
            Behaviour::for_number("+15551239999"),
            Behaviour::presses(["#"])
        );
        assert_eq!(Behaviour::for_number("7"), Behaviour::presses(["#"]));
    }
}
