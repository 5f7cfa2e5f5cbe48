//! Phone numbers: parsing to E.164, extension stripping, classification and masking.
//!
//! A [`PhoneNumber`] can only hold a valid E.164 number, and its `Debug` is masked, so a
//! number that reaches a log line or span field never shows in full.

mod classify;

use std::fmt;

use phonenumber::country::Id;
use phonenumber::{ParseError, Type};
use serde::{Deserialize, Serialize};

/// A valid phone number in E.164 form (`+14255551234`), with its region and type.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    country: Option<String>,
    number_type: NumberType,
}

/// What kind of line a number is, per libphonenumber's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NumberType {
    Mobile,
    FixedLine,
    /// Regions such as the US cannot tell fixed-line from mobile by the number alone.
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

/// The outcome of [`parse`]: the number to dial and any extension the user typed, which we
/// keep apart because it must never be dialled as part of the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub number: PhoneNumber,
    pub extension: Option<String>,
}

/// Why an input is not a usable phone number. The messages go into API error `detail`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error(
        "the phone number may contain only digits, spaces, a leading '+' and the characters \
         - . ( ) /, optionally followed by an extension such as \"x123\""
    )]
    InvalidFormat,
    #[error("the region is not a known two-letter ISO 3166-1 code such as \"US\"")]
    InvalidRegion,
    #[error("the number has no country code: start it with '+' or give its region")]
    MissingRegion,
    #[error("the input does not contain a phone number")]
    NotANumber,
    #[error("the number's country calling code does not exist")]
    InvalidCountryCode,
    #[error("the phone number is too short")]
    TooShort,
    #[error("the phone number is too long")]
    TooLong,
    #[error("the number is not a valid phone number for its region")]
    Invalid,
    #[error(
        "the number could not be read without changing its digits; enter it in international \
         format without a trunk prefix, e.g. +44 20 7946 0000"
    )]
    DigitsChanged,
}

/// Longest extension we accept; libphonenumber allows up to 20, but no switchboard needs more
/// than a handful and a long tail is more likely a second number pasted in.
const MAX_EXTENSION_DIGITS: usize = 10;

/// Extension markers, longest first so `ext` is not read as `e` + garbage.
const EXTENSION_MARKERS: [&str; 4] = ["extension", "ext.", "ext", "x"];

/// Parses what a user typed into a valid number plus an optional extension.
///
/// `region` (ISO 3166-1 alpha-2, any case) is needed only when the input has no leading `+`.
pub fn parse(input: &str, region: Option<&str>) -> Result<Parsed, PhoneError> {
    parse_number(input, region, false)
}

/// [`parse`]; `crate_only` always asks the crate (the tests compare both ways).
fn parse_number(input: &str, region: Option<&str>, crate_only: bool) -> Result<Parsed, PhoneError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(PhoneError::Empty);
    }
    let region = region.map(parse_region).transpose()?;
    let (main, extension) = split_extension(input)?;
    check_characters(main)?;
    let international = main.starts_with('+');
    if !international && region.is_none() {
        return Err(PhoneError::MissingRegion);
    }
    let plain = if crate_only || region.is_some() {
        None
    } else {
        plain_international(main)
    };
    let number = match plain {
        Some(number) => number?,
        None => crate_parse(main, region)?,
    };
    Ok(Parsed {
        number,
        extension: extension.map(str::to_owned),
    })
}

/// `+`, digits and spaces, read without the crate's parse when it would certainly read them as
/// we do (`classify::plain_e164`): the crate drops the spaces, and nothing else it does
/// changes such a number (no extension, IDD or RFC 3966 syntax without a region hint or other
/// characters). These are what users type most and every number we stored (E.164), and the
/// crate's parse costs more than the rest of a start's number handling together. `None`: ask
/// the crate. Tests compare both routes over every example number of the metadata.
fn plain_international(main: &str) -> Option<Result<PhoneNumber, PhoneError>> {
    let rest = main.strip_prefix('+')?;
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b' ') {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let (code, national) = classify::plain_e164(&digits)?;
    Some(classified(code, national, format!("+{digits}")))
}

/// The crate's parse, refusing what it changed, then [`classified`].
fn crate_parse(main: &str, region: Option<Id>) -> Result<PhoneNumber, PhoneError> {
    let parsed = phonenumber::parse(region, main).map_err(from_crate_error)?;
    let code = parsed.code().value();
    let national = parsed.national().to_string();
    // What the crate's E.164 formatter writes (`formatter.rs`), without the formatter's search
    // for a national format pattern that E.164 does not use.
    let e164 = format!("+{code}{national}");
    // The crate can silently drop digits (a known bug of the phonenumber crate: +78005553535 becomes
    // +7005553535). With a '+' the user typed the full international number, so any
    // difference means we would dial someone else. This also refuses "+44 (0)20 …": a
    // dropped trunk prefix looks exactly like that bug (8 is Russia's trunk prefix).
    if main.starts_with('+') && digits(main) != digits(&e164) {
        return Err(PhoneError::DigitsChanged);
    }
    classified(code, &national, e164)
}

/// The checks after the crate's parse (or instead of it, [`plain_international`]): the
/// national number's length for its country code, then its region and line type.
/// `national` keeps its leading zeros; `e164` is the number's E.164 form.
fn classified(code: u16, national: &str, e164: String) -> Result<PhoneNumber, PhoneError> {
    if let Some((min, max)) = classify::length_bounds(code) {
        if national.len() < min {
            return Err(PhoneError::TooShort);
        }
        if national.len() > max {
            return Err(PhoneError::TooLong);
        }
    }
    let (meta, kind) = classify::region_and_type(code, national).ok_or(PhoneError::Invalid)?;
    let number_type = NumberType::from_crate(kind).ok_or(PhoneError::Invalid)?;
    // Non-geographic entities (+800, +882, …) have the pseudo-region "001", not a country.
    let country = Some(meta.id())
        .filter(|id| id.len() == 2 && id.bytes().all(|b| b.is_ascii_uppercase()))
        .map(str::to_owned);
    Ok(PhoneNumber {
        e164,
        country,
        number_type,
    })
}

impl PhoneNumber {
    /// Re-reads a number stored in E.164 form; anything else (spaces, extension) is refused.
    pub fn from_e164(e164: &str) -> Result<Self, PhoneError> {
        let well_formed = e164
            .strip_prefix('+')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(PhoneError::InvalidFormat);
        }
        // A stored number is plain: `parse` reads it without the crate's parse.
        parse(e164, None).map(|parsed| parsed.number)
    }

    /// The full number for dialling. Never log it; use [`PhoneNumber::masked`].
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// ISO 3166-1 alpha-2 region (`"US"`, `"NL"`); `None` for non-geographic numbers.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    pub fn number_type(&self) -> NumberType {
        self.number_type
    }

    /// Safe for logs and UIs: `+1********34`.
    pub fn masked(&self) -> String {
        mask_e164(&self.e164)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneNumber")
            .field("e164", &self.masked())
            .field("country", &self.country)
            .field("number_type", &self.number_type)
            .finish()
    }
}

impl NumberType {
    /// The serde name, for policies and log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberType::Mobile => "mobile",
            NumberType::FixedLine => "fixed_line",
            NumberType::FixedLineOrMobile => "fixed_line_or_mobile",
            NumberType::TollFree => "toll_free",
            NumberType::PremiumRate => "premium_rate",
            NumberType::SharedCost => "shared_cost",
            NumberType::Voip => "voip",
            NumberType::PersonalNumber => "personal_number",
            NumberType::Pager => "pager",
            NumberType::Uan => "uan",
            NumberType::Voicemail => "voicemail",
            NumberType::Unknown => "unknown",
        }
    }

    /// `None` for types that are not a callable subscriber line (unknown, emergency, short
    /// codes, …), which `parse` reports as invalid.
    fn from_crate(kind: Type) -> Option<Self> {
        Some(match kind {
            Type::Mobile => NumberType::Mobile,
            Type::FixedLine => NumberType::FixedLine,
            Type::FixedLineOrMobile => NumberType::FixedLineOrMobile,
            Type::TollFree => NumberType::TollFree,
            Type::PremiumRate => NumberType::PremiumRate,
            Type::SharedCost => NumberType::SharedCost,
            Type::Voip => NumberType::Voip,
            Type::PersonalNumber => NumberType::PersonalNumber,
            Type::Pager => NumberType::Pager,
            Type::Uan => NumberType::Uan,
            Type::Voicemail => NumberType::Voicemail,
            _ => return None,
        })
    }
}

/// Masks a stored E.164 string: `+`, country code and last two digits stay, every other
/// digit becomes `*`. Input that is not E.164 is masked entirely except its last two digits.
pub fn mask_e164(e164: &str) -> String {
    let all_digits = digits(e164);
    let code_len = e164
        .strip_prefix('+')
        .filter(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
        .and_then(classify::country_code_len)
        .unwrap_or(0);
    let tail = all_digits.len().saturating_sub(code_len);
    // Too few digits to hide anything meaningful: hide them all rather than show the number.
    let shown_tail = if tail > 4 { 2 } else { 0 };
    let mut out = String::with_capacity(all_digits.len() + 1);
    if code_len > 0 {
        out.push('+');
    }
    out.push_str(&all_digits[..code_len]);
    out.extend(std::iter::repeat_n('*', tail - shown_tail));
    out.push_str(&all_digits[all_digits.len() - shown_tail..]);
    out
}

/// Masks every phone-number-like run inside free text, such as a provider's error message,
/// before it reaches a log line, Redis or an API answer. A run is digits in groups joined by
/// short stretches of the separators people write numbers with (space, `.`, `-`, `/`,
/// parentheses), optionally after `+` or `(`: `+1 (425) 555-0198`, `425.555.0198`, `+31 6
/// 12345678`. A run of 7 or more digits is masked whole except its last two digits. Dates and
/// similar runs are masked too: in error text, over-masking is the safe side.
pub fn redact_numbers(text: &str) -> String {
    const MIN_DIGITS: usize = 7;
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match number_run(&chars, i) {
            Some((end, digit_count)) if digit_count >= MIN_DIGITS => {
                out.extend(std::iter::repeat_n('*', end - i - 2));
                out.extend(&chars[end - 2..end]);
                i = end;
            }
            Some((end, _)) => {
                out.extend(&chars[i..end]);
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// The run of digit groups starting at `start` (see [`redact_numbers`]): its end (exclusive, on
/// a digit) and digit count, or `None` when no digit follows an optional leading `+` / `(`.
fn number_run(chars: &[char], start: usize) -> Option<(usize, usize)> {
    const MAX_SEPARATORS: usize = 3;
    let is_separator = |c: char| matches!(c, ' ' | '\u{a0}' | '.' | '-' | '/' | '(' | ')');
    let mut i = start;
    if chars[i] == '+' {
        i += 1;
    }
    if chars.get(i) == Some(&'(') {
        i += 1;
    }
    if !chars.get(i).is_some_and(char::is_ascii_digit) {
        return None;
    }
    let (mut end, mut digit_count) = (i, 0);
    loop {
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
            digit_count += 1;
        }
        end = end.max(i);
        let gap = chars[i..]
            .iter()
            .take(MAX_SEPARATORS + 1)
            .take_while(|c| is_separator(**c))
            .count();
        if gap == 0 || gap > MAX_SEPARATORS || !chars.get(i + gap).is_some_and(char::is_ascii_digit)
        {
            return Some((end, digit_count));
        }
        i += gap;
    }
}

/// Every region code [`parse`] accepts as a hint (ISO 3166-1 alpha-2, uppercase; lowercase is
/// accepted too), sorted: the regions libphonenumber has metadata for.
pub fn known_regions() -> &'static [&'static str] {
    static REGIONS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    REGIONS.get_or_init(|| {
        let mut regions: Vec<&'static str> = phonenumber::metadata::DATABASE
            .iter()
            .map(|meta| meta.id())
            .filter(|id| parse_region(id).is_ok())
            .collect();
        regions.sort_unstable();
        regions.dedup();
        regions
    })
}

fn parse_region(region: &str) -> Result<Id, PhoneError> {
    let region = region.trim();
    if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(PhoneError::InvalidRegion);
    }
    region
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| PhoneError::InvalidRegion)
}

/// Splits `+1 425 555 1234 x12` into the number and `12`. The first letter starts the
/// extension; any letter that is not an extension marker is an error, because the crate would
/// otherwise read `CALL` as keypad digits 2255.
fn split_extension(input: &str) -> Result<(&str, Option<&str>), PhoneError> {
    let Some(start) = input.find(|c: char| c.is_alphabetic()) else {
        return Ok((input, None));
    };
    let tail = input[start..].to_ascii_lowercase();
    let after_marker = EXTENSION_MARKERS
        .iter()
        .find_map(|marker| tail.strip_prefix(marker))
        .ok_or(PhoneError::InvalidFormat)?;
    let ext_digits = after_marker.trim_start_matches([' ', '.', ':']).trim_end();
    let valid = !ext_digits.is_empty()
        && ext_digits.len() <= MAX_EXTENSION_DIGITS
        && ext_digits.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(PhoneError::InvalidFormat);
    }
    // The digits are ASCII, so they sit at the same byte offset from the end of `input`.
    let extension = &input[input.trim_end().len() - ext_digits.len()..input.trim_end().len()];
    Ok((input[..start].trim_end(), Some(extension)))
}

fn check_characters(main: &str) -> Result<(), PhoneError> {
    let body = main.strip_prefix('+').unwrap_or(main);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
    {
        return Err(PhoneError::InvalidFormat);
    }
    if !body.bytes().any(|b| b.is_ascii_digit()) {
        return Err(PhoneError::NotANumber);
    }
    Ok(())
}

fn from_crate_error(err: ParseError) -> PhoneError {
    match err {
        ParseError::NoNumber | ParseError::MalformedInteger(_) => PhoneError::NotANumber,
        ParseError::InvalidCountryCode => PhoneError::InvalidCountryCode,
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => PhoneError::TooShort,
        ParseError::TooLong => PhoneError::TooLong,
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests;
