//! Region and number-type lookup on top of the `phonenumber` metadata.
//!
//! We do this ourselves because the crate's `PhoneNumber::number_type` and `country().id()`
//! drop the national number's leading zeros before matching, so every Italian number
//! (`+39 06 …`) comes back as type unknown with no region. `is_valid` keeps the zeros, so we
//! mirror it: same region choice (`validator::source_for`) and the same descriptor order
//! (`validator::number_type`), applied to the zero-padded national number.

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use phonenumber::{PhoneNumber, Type};

/// The region metadata and type for a parsed number; `None` if no region of its country
/// code claims it.
pub(super) fn region_and_type(number: &PhoneNumber) -> Option<(&'static Metadata, Type)> {
    let national = number.national().to_string();
    let regions = DATABASE.by_code(&number.code().value())?;
    if let [only] = regions.as_slice() {
        return Some((*only, number_type(only, &national)));
    }
    regions
        .into_iter()
        .find_map(|meta| match meta.leading_digits() {
            Some(pattern) => pattern
                .find(&national)
                .filter(|m| m.start() == 0)
                .map(|_| (meta, number_type(meta, &national))),
            None => {
                let kind = number_type(meta, &national);
                (kind != Type::Unknown).then_some((meta, kind))
            }
        })
}

/// Shortest and longest national number any line type of any region of `code` allows.
/// The general descriptor's own length list is empty in the crate's data, so we take the
/// union over the per-type descriptors.
pub(super) fn length_bounds(code: u16) -> Option<(usize, usize)> {
    let lengths = DATABASE
        .by_code(&code)?
        .into_iter()
        .flat_map(|meta| {
            let d = meta.descriptors();
            [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
        })
        .flatten()
        .flat_map(|desc| desc.possible_length().iter().copied())
        .map(usize::from);
    let (min, max) = lengths.fold((usize::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
    (min <= max).then_some((min, max))
}

/// Length of the country calling code at the start of `digits` (E.164 without `+`).
/// ITU codes are prefix-free, so the first length that names a known code is the one.
pub(super) fn country_code_len(digits: &str) -> Option<usize> {
    (1..=3).find(|&len| {
        digits
            .get(..len)
            .and_then(|code| code.parse::<u16>().ok())
            .is_some_and(|code| DATABASE.region(&code).is_some())
    })
}

/// `validator::number_type`, in the same order; types we never route on (emergency, short
/// codes, …) are left as unknown, which callers treat as invalid.
fn number_type(meta: &Metadata, national: &str) -> Type {
    let d = meta.descriptors();
    if !d.general().is_match(national) {
        return Type::Unknown;
    }
    let matches = |desc: Option<&Descriptor>| desc.is_some_and(|desc| desc.is_match(national));
    let ordered = [
        (d.premium_rate(), Type::PremiumRate),
        (d.toll_free(), Type::TollFree),
        (d.shared_cost(), Type::SharedCost),
        (d.voip(), Type::Voip),
        (d.personal_number(), Type::PersonalNumber),
        (d.pager(), Type::Pager),
        (d.uan(), Type::Uan),
        (d.voicemail(), Type::Voicemail),
    ];
    if let Some((_, kind)) = ordered.into_iter().find(|(desc, _)| matches(*desc)) {
        return kind;
    }
    if matches(d.fixed_line()) {
        let same_pattern = d.fixed_line().map(|f| f.national_number().as_str())
            == d.mobile().map(|m| m.national_number().as_str());
        return if same_pattern || matches(d.mobile()) {
            Type::FixedLineOrMobile
        } else {
            Type::FixedLine
        };
    }
    if matches(d.mobile()) {
        Type::Mobile
    } else {
        Type::Unknown
    }
}
