//! Each provider's documented bounds on what an account asks of a call (ring timeout, time
//! limit), checked at load so a configuration the provider would refuse — or silently clamp —
//! never starts (docs/PROVIDERS.md#call-bounds-per-provider).

use std::ops::RangeInclusive;

/// The bounds one provider documents for its Calls API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// Who sets the bound, and the parameter's name there (for the error message).
    pub provider: &'static str,
    pub ring_timeout_param: &'static str,
    pub ring_timeout_secs: RangeInclusive<u32>,
    pub time_limit_param: &'static str,
    /// A configured time limit of 0 means "derived from the prompts" and is always allowed.
    pub time_limit_secs: RangeInclusive<u32>,
}

impl CallLimits {
    /// Twilio's Calls API: `Timeout` up to 600 s, `TimeLimit` up to 14,400 s (its default).
    pub const TWILIO: CallLimits = CallLimits {
        provider: "Twilio",
        ring_timeout_param: "Timeout",
        ring_timeout_secs: 1..=600,
        time_limit_param: "TimeLimit",
        time_limit_secs: 1..=14_400,
    };

    /// Telnyx TeXML "Initiate an outbound call": `Timeout` 5..=120 s (default 30), `TimeLimit`
    /// 30..=14,400 s.
    pub const TELNYX: CallLimits = CallLimits {
        provider: "Telnyx",
        ring_timeout_param: "Timeout",
        ring_timeout_secs: 5..=120,
        time_limit_param: "TimeLimit",
        time_limit_secs: 30..=14_400,
    };

    /// SignalWire's compatibility API mirrors Twilio's parameters; it documents no other bounds
    /// (docs/LIMITS.md), so Twilio's apply.
    pub const SIGNALWIRE: CallLimits = CallLimits {
        provider: "SignalWire",
        ..Self::TWILIO
    };

    /// Plivo's Make a call: `ring_timeout` (default 120 s) and `time_limit` (an integer > 0,
    /// default 14,400 s); Plivo documents no upper bounds, so Twilio's apply (docs/LIMITS.md).
    pub const PLIVO: CallLimits = CallLimits {
        provider: "Plivo",
        ring_timeout_param: "ring_timeout",
        ring_timeout_secs: 1..=600,
        time_limit_param: "time_limit",
        time_limit_secs: 1..=14_400,
    };

    /// Checks an account's `ring_timeout_secs` and `time_limit_secs`; `key` names the account.
    pub fn check(
        &self,
        key: &str,
        ring_timeout_secs: u32,
        time_limit_secs: u32,
    ) -> Result<(), String> {
        if !self.ring_timeout_secs.contains(&ring_timeout_secs) {
            return Err(format!(
                "{key}.ring_timeout_secs = {ring_timeout_secs}: {} accepts {} of {}..={} s",
                self.provider,
                self.ring_timeout_param,
                self.ring_timeout_secs.start(),
                self.ring_timeout_secs.end()
            ));
        }
        if time_limit_secs != 0 && !self.time_limit_secs.contains(&time_limit_secs) {
            return Err(format!(
                "{key}.time_limit_secs = {time_limit_secs}: {} accepts {} of {}..={} s (or 0: derived from the prompts)",
                self.provider,
                self.time_limit_param,
                self.time_limit_secs.start(),
                self.time_limit_secs.end()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_name_the_provider() {
        let l = CallLimits::TWILIO;
        assert!(l.check("providers[0]", 600, 14_400).is_ok());
        assert!(l.check("providers[0]", 1, 0).is_ok());
        let e = l.check("providers[0]", 601, 0).unwrap_err();
        assert!(e.contains("Twilio") && e.contains("1..=600"), "{e}");
        let e = l.check("providers[0]", 30, 14_401).unwrap_err();
        assert!(e.contains("TimeLimit") && e.contains("14400"), "{e}");
        let t = CallLimits::TELNYX;
        let e = t.check("providers[1]", 600, 0).unwrap_err();
        assert!(e.contains("Telnyx") && e.contains("5..=120"), "{e}");
        assert!(t.check("providers[1]", 4, 0).is_err());
        assert!(t.check("providers[1]", 120, 14_400).is_ok());
        let e = t.check("providers[1]", 30, 10).unwrap_err();
        assert!(e.contains("30..=14400"), "{e}");
    }

    /// A Telnyx account asking for 600 s of ringing does not load; the message names Telnyx's
    /// bound. The same value on a Twilio account loads.
    #[test]
    fn a_telnyx_account_with_twilios_ring_timeout_does_not_load() {
        let telnyx = |extra: &str| {
            format!(
                "[[providers]]\nname = \"tx\"\nkind = \"telnyx\"\napi_key = \"k\"\naccount_sid = \"a\"\napplication_sid = \"app\"\npublic_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\nfrom = \"+15005550006\"\n{extra}"
            )
        };
        let e = crate::config::Config::from_toml_overlay(&telnyx("ring_timeout_secs = 600\n"))
            .map(|_| ())
            .expect_err("Telnyx refuses a 600 s Timeout")
            .to_string();
        assert!(e.contains("Telnyx") && e.contains("5..=120"), "{e}");
        let e = crate::config::Config::from_toml_overlay(&telnyx("time_limit_secs = 20\n"))
            .map(|_| ())
            .expect_err("Telnyx refuses a 20 s TimeLimit")
            .to_string();
        assert!(e.contains("30..=14400"), "{e}");
        assert!(
            crate::config::Config::from_toml_overlay(&telnyx("ring_timeout_secs = 120\n")).is_ok()
        );
        let twilio = "[[providers]]\nname = \"tw\"\nkind = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+15005550006\"\nring_timeout_secs = 600\n";
        assert!(crate::config::Config::from_toml_overlay(twilio).is_ok());
    }
}
