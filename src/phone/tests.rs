//! Parsing, classification and masking of phone numbers, including the crate's known bugs.

use super::*;

fn ok(input: &str, region: Option<&str>) -> Parsed {
    parse(input, region).unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
}

fn err(input: &str, region: Option<&str>) -> PhoneError {
    match parse(input, region) {
        Ok(p) => panic!("{input:?} should fail, got {:?}", p.number),
        Err(e) => e,
    }
}

#[test]
fn international_number_with_spaces_parses_to_e164() {
    let parsed = ok("+1 425 555 1234", None);
    assert_eq!(parsed.number.e164(), "+14255551234");
    assert_eq!(parsed.number.country(), Some("US"));
    assert_eq!(parsed.number.number_type(), NumberType::FixedLineOrMobile);
    assert_eq!(parsed.extension, None);
}

#[test]
fn lowercase_x_extension_is_stripped_and_returned() {
    let parsed = ok("+1 425 555 1234 x12345", None);
    assert_eq!(parsed.number.e164(), "+14255551234");
    assert_eq!(parsed.extension.as_deref(), Some("12345"));
}

#[test]
fn capital_x_extension_without_space_is_stripped() {
    let parsed = ok("+1 4255551234X12345", None);
    assert_eq!(parsed.number.e164(), "+14255551234");
    assert_eq!(parsed.extension.as_deref(), Some("12345"));
}

#[test]
fn ext_and_extension_markers_are_accepted() {
    for input in [
        "+1 425 555 1234 ext. 55",
        "+1 425 555 1234 EXT 55",
        "+1 425 555 1234 extension 55",
    ] {
        assert_eq!(ok(input, None).extension.as_deref(), Some("55"), "{input}");
    }
}

#[test]
fn national_format_needs_and_uses_the_region_hint() {
    let parsed = ok("(425) 555-1234", Some("US"));
    assert_eq!(parsed.number.e164(), "+14255551234");
    assert_eq!(
        ok("(425) 555-1234", Some("us")).number.e164(),
        "+14255551234"
    );
    assert_eq!(err("(425) 555-1234", None), PhoneError::MissingRegion);
}

#[test]
fn dutch_national_prefix_is_removed_with_a_region_hint() {
    let parsed = ok("06 12345678", Some("NL"));
    assert_eq!(parsed.number.e164(), "+31612345678");
    assert_eq!(parsed.number.number_type(), NumberType::Mobile);
}

#[test]
fn dutch_mobile_is_classified_as_mobile() {
    let number = ok("+31 6 12345678", None).number;
    assert_eq!(number.e164(), "+31612345678");
    assert_eq!(number.country(), Some("NL"));
    assert_eq!(number.number_type(), NumberType::Mobile);
}

#[test]
fn plus_sign_wins_over_a_different_region_hint() {
    assert_eq!(
        ok("+31 6 12345678", Some("US")).number.e164(),
        "+31612345678"
    );
}

#[test]
fn uk_and_us_premium_rate_numbers_are_detected() {
    for input in ["+44 909 879 0000", "+1 900 200 0000"] {
        assert_eq!(
            ok(input, None).number.number_type(),
            NumberType::PremiumRate,
            "{input}"
        );
    }
}

#[test]
fn toll_free_numbers_are_detected() {
    for input in ["+1 800 253 0000", "+44 800 123 4567"] {
        assert_eq!(
            ok(input, None).number.number_type(),
            NumberType::TollFree,
            "{input}"
        );
    }
}

#[test]
fn uk_mobile_and_german_fixed_line_are_classified() {
    let uk = ok("+44 7400 123456", None).number;
    assert_eq!(
        (uk.country(), uk.number_type()),
        (Some("GB"), NumberType::Mobile)
    );
    let de = ok("+49 30 123456", None).number;
    assert_eq!(
        (de.country(), de.number_type()),
        (Some("DE"), NumberType::FixedLine)
    );
}

#[test]
fn italian_leading_zero_is_kept_and_classified() {
    // The crate alone reports these as type unknown with no region (it drops the zero).
    let number = ok("+39 06 1234 5678", None).number;
    assert_eq!(number.e164(), "+390612345678");
    assert_eq!(number.country(), Some("IT"));
    assert_eq!(number.number_type(), NumberType::FixedLine);
}

#[test]
fn russian_toll_free_truncated_by_the_crate_is_rejected() {
    // A known phonenumber crate bug: it turns +78005553535 into +7005553535.
    assert_eq!(err("+78005553535", None), PhoneError::DigitsChanged);
    assert_eq!(err("+7 800 555 35 35", None), PhoneError::DigitsChanged);
}

#[test]
fn russian_national_form_hit_by_the_same_bug_is_not_accepted() {
    assert!(parse("8 800 555 35 35", Some("RU")).is_err());
}

#[test]
fn trunk_prefix_after_the_country_code_is_refused_not_guessed() {
    assert_eq!(err("+44 (0)20 7946 0000", None), PhoneError::DigitsChanged);
    assert_eq!(ok("+44 20 7946 0000", None).number.e164(), "+442079460000");
}

#[test]
fn letters_are_rejected_instead_of_read_as_keypad_digits() {
    assert_eq!(err("+1 425 CALL ME", None), PhoneError::InvalidFormat);
    assert_eq!(err("+1 800 FLOWERS", None), PhoneError::InvalidFormat);
    assert_eq!(err("+1 425 555 1234 x12a", None), PhoneError::InvalidFormat);
    assert_eq!(err("+1 425 555 1234 x", None), PhoneError::InvalidFormat);
    assert_eq!(
        err("+1 425 555 1234 x12345678901", None),
        PhoneError::InvalidFormat
    );
}

#[test]
fn stray_symbols_and_misplaced_plus_are_rejected() {
    for input in [
        "+1 425 555 1234 #",
        "+1 425*555*1234",
        "1+4255551234",
        "++14255551234",
        "+1 425 ５55 1234",
    ] {
        assert_eq!(err(input, Some("US")), PhoneError::InvalidFormat, "{input}");
    }
}

#[test]
fn too_short_and_too_long_are_reported_as_such() {
    assert_eq!(err("+1 425", None), PhoneError::TooShort);
    // Bounds are the union over all regions sharing the code (some +1 regions allow shorter
    // numbers), so a nine-digit US number is merely invalid, not "too short".
    assert_eq!(err("+1 425 555 123", None), PhoneError::Invalid);
    assert_eq!(err("+1 425 555 12345", None), PhoneError::TooLong);
    assert_eq!(err("+1 425 555 12345678901", None), PhoneError::TooLong);
}

#[test]
fn empty_and_blank_inputs_are_empty() {
    assert_eq!(err("", None), PhoneError::Empty);
    assert_eq!(err("   ", Some("US")), PhoneError::Empty);
}

#[test]
fn inputs_without_digits_are_not_numbers() {
    assert_eq!(err("+", None), PhoneError::NotANumber);
    assert_eq!(err("( ) -", Some("US")), PhoneError::NotANumber);
}

#[test]
fn unknown_or_malformed_regions_are_rejected() {
    for region in ["ZZZ", "ZZ", "", "U1", "usa"] {
        assert_eq!(
            err("(425) 555-1234", Some(region)),
            PhoneError::InvalidRegion,
            "{region:?}"
        );
    }
}

#[test]
fn unassigned_country_code_is_reported() {
    assert_eq!(err("+999 1234567", None), PhoneError::InvalidCountryCode);
}

#[test]
fn well_formed_but_unassigned_numbers_are_invalid() {
    // NANP area codes never start with 1; UK numbers never start with 0 after +44.
    assert_eq!(err("+1 123 456 7890", None), PhoneError::Invalid);
    assert_eq!(err("(123) 456-7890", Some("US")), PhoneError::Invalid);
}

#[test]
fn masked_shows_country_code_and_last_two_digits() {
    let number = ok("+1 425 555 1234", None).number;
    assert_eq!(number.masked(), "+1********34");
    assert_eq!(ok("+31 6 12345678", None).number.masked(), "+31*******78");
}

#[test]
fn debug_never_shows_the_full_number() {
    let number = ok("+1 425 555 1234", None).number;
    let shown = format!("{number:?} {:?}", ok("+1 425 555 1234 x9", None));
    assert!(!shown.contains("4255551234"), "{shown}");
    assert!(shown.contains("+1********34"), "{shown}");
}

#[test]
fn mask_e164_handles_stored_and_odd_strings() {
    assert_eq!(mask_e164("+14255551234"), "+1********34");
    assert_eq!(mask_e164("+442079460000"), "+44********00");
    assert_eq!(mask_e164("+3531234"), "+353****");
    assert_eq!(mask_e164("4255551234"), "********34");
    assert_eq!(mask_e164("+1 425"), "****");
    assert_eq!(mask_e164(""), "");
}

#[test]
fn from_e164_round_trips_and_refuses_other_forms() {
    let number = ok("+1 (425) 555-1234", None).number;
    assert_eq!(PhoneNumber::from_e164(number.e164()), Ok(number));
    for bad in ["+1 425 555 1234", "14255551234", "+14255551234x1", "+"] {
        assert_eq!(
            PhoneNumber::from_e164(bad),
            Err(PhoneError::InvalidFormat),
            "{bad}"
        );
    }
}

/// Every example number of the crate's metadata (each region's descriptors, as E.164 under the
/// region's country code), plus variants one digit shorter, one digit longer and with the
/// first national digit changed, so the errors are compared too.
fn example_e164_numbers() -> Vec<String> {
    let mut out = Vec::new();
    for code in 1..=999u16 {
        for meta in phonenumber::metadata::DATABASE
            .by_code(&code)
            .unwrap_or_default()
        {
            let d = meta.descriptors();
            // The line types, and the rest the metadata has examples for.
            let others = [
                d.emergency(),
                d.short_code(),
                d.standard_rate(),
                d.carrier(),
                d.no_international(),
            ];
            for example in classify::line_descriptors(meta)
                .into_iter()
                .chain(others)
                .flatten()
                .filter_map(|d| d.example())
            {
                let e164 = format!("+{code}{example}");
                out.push(e164[..e164.len() - 1].to_owned());
                out.push(format!("{e164}5"));
                let mut national = example.chars();
                if let Some(first) = national.next() {
                    let other = if first == '9' { '1' } else { '9' };
                    out.push(format!("+{code}{other}{}", national.as_str()));
                }
                out.push(e164);
            }
        }
    }
    out
}

/// Both ways of reading a number: `parse` (which skips the crate for plain international
/// numbers) and the crate's parse alone.
fn both_ways(input: &str) -> (Result<Parsed, PhoneError>, Result<Parsed, PhoneError>) {
    (parse(input, None), parse_number(input, None, true))
}

#[test]
fn plain_numbers_read_without_the_crate_exactly_as_the_crate_reads_them() {
    let numbers = example_e164_numbers();
    assert!(numbers.len() > 4000, "{}", numbers.len());
    let mut plain = 0;
    for e164 in &numbers {
        let (fast, full) = both_ways(e164);
        assert_eq!(fast, full, "{e164}");
        assert_eq!(
            PhoneNumber::from_e164(e164),
            full.map(|parsed| parsed.number),
            "{e164}"
        );
        // As typed: spaces after the country code and between digit groups.
        let digits = &e164[1..];
        let code_len = classify::country_code_len(digits).unwrap_or(1);
        let (code, national) = digits.split_at(code_len);
        let grouped: Vec<String> = national
            .as_bytes()
            .chunks(3)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        for typed in [
            format!("+{code} {national}"),
            format!("+ {code} {}", grouped.join(" ")),
        ] {
            let (fast, full) = both_ways(&typed);
            assert_eq!(fast, full, "{typed}");
        }
        if classify::plain_e164(digits).is_some() {
            plain += 1;
        }
    }
    // Skipping the crate must be the common case, not a corner.
    assert!(
        plain * 10 > numbers.len() * 7,
        "{plain} of {}",
        numbers.len()
    );
}

#[test]
fn only_numbers_the_crate_would_read_unchanged_skip_it() {
    for digits in ["14255551234", "31612345678", "442079460000", "390612345678"] {
        assert!(classify::plain_e164(digits).is_some(), "{digits}");
    }
    // 8 is Russia's national prefix: the crate would strip it, so the crate decides (and the
    // changed digits are refused).
    assert_eq!(classify::plain_e164("78005553535"), None);
    assert_eq!(
        PhoneNumber::from_e164("+78005553535"),
        Err(PhoneError::DigitsChanged)
    );
    // The crate's errors are the crate's to report.
    for digits in ["1", "123", "0123456789", "9991234567", "1000000000"] {
        assert_eq!(classify::plain_e164(digits), None, "{digits}");
    }
}

#[test]
fn number_type_serde_names_match_as_str() {
    for kind in [
        NumberType::FixedLineOrMobile,
        NumberType::PremiumRate,
        NumberType::Uan,
    ] {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
    }
}

#[test]
fn error_messages_are_sentences_for_api_details() {
    assert_eq!(
        PhoneError::Invalid.to_string(),
        "the number is not a valid phone number for its region"
    );
}

#[test]
fn numbers_inside_free_text_are_redacted() {
    assert_eq!(
        redact_numbers("The 'To' number 5551234567 is not a valid phone number."),
        "The 'To' number ********67 is not a valid phone number."
    );
    assert_eq!(redact_numbers("+14155550100 busy"), "**********00 busy");
    assert_eq!(
        redact_numbers("error 21211 at 12:30"),
        "error 21211 at 12:30"
    );
}

#[test]
fn numbers_written_with_separators_are_redacted() {
    let cases = [
        (
            "Call +1 (425) 555-0198 failed",
            "Call ***************98 failed",
        ),
        ("to 425.555.0198.", "to **********98."),
        ("to 425-555-0198", "to **********98"),
        ("to +31 6 12345678!", "to ************78!"),
        ("(425) 555 0198", "************98"),
        (
            "+44 20 7946 0000 and +1-425-555-0199",
            "**************00 and *************99",
        ),
        ("nbsp 425\u{a0}555\u{a0}0198", "nbsp **********98"),
        ("+1 - 425 - 555 - 0198", "*******************98"),
    ];
    for (text, masked) in cases {
        assert_eq!(redact_numbers(text), masked, "{text:?}");
    }
    for kept in [
        "error 21211 at 12:30",
        "HTTP 400: 21211",
        "retry in 5 s (attempt 2/3)",
        "a + b - (c)",
        "",
        "+",
        "(",
        "123 456",
        "+1 (425)",
        "1 2 3 4 5 6",
    ] {
        assert_eq!(redact_numbers(kept), kept, "{kept:?}");
    }
    // No digit of a masked number survives except the last two.
    let text = "The 'To' number +1 (425) 555-0198 is not a valid phone number.";
    let digits: String = redact_numbers(text)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(digits, "98");
}

#[test]
fn known_regions_are_the_hints_parse_accepts() {
    let regions = known_regions();
    assert!(regions.len() > 200, "{}", regions.len());
    for region in ["US", "NL", "GB", "DE"] {
        assert!(regions.contains(&region), "{region}");
    }
    assert!(!regions.contains(&"ZZ") && !regions.contains(&"001"));
    assert!(
        regions
            .iter()
            .all(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
    );
    assert!(parse("425 555 0198", Some("us")).is_ok());
}
