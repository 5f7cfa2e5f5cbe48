//! Region and number-type lookup on top of the `phonenumber` metadata.
//!
//! We do this ourselves because the crate's `PhoneNumber::number_type` and `country().id()`
//! drop the national number's leading zeros before matching, so every Italian number
//! (`+39 06 …`) comes back as type unknown with no region. `is_valid` keeps the zeros, so we
//! mirror it: same region choice (`validator::source_for`) and the same descriptor order
//! (`validator::number_type`), applied to the zero-padded national number.
//!
//! The patterns are the crate's, compiled once by us ([`CODES`]): the crate's own
//! `Descriptor::is_match` looks each pattern up in one LRU cache behind a global mutex, keyed by
//! the pattern's source text (SipHashed per lookup, often kilobytes long), which was a fifth of
//! a verification start's CPU.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use phonenumber::Type;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};

/// Every country calling code's regions (the crate's order: the main country first), read
/// once; each region compiles its patterns on first use, so a server that only ever sees a
/// few countries compiles only theirs. Reads are lock-free after initialisation.
static CODES: LazyLock<HashMap<u16, Code>> = LazyLock::new(|| {
    (1..=999)
        .filter_map(|code| Some((code, Code::new(DATABASE.by_code(&code)?))))
        .collect()
});

struct Code {
    regions: Vec<Region>,
    /// See [`length_bounds`].
    length_bounds: Option<(usize, usize)>,
    /// The regions' distinct national prefixes, for [`plain_e164`] (the 25 NANP regions share
    /// one).
    national_prefixes: OnceLock<Vec<NationalPrefix>>,
}

struct Region {
    meta: &'static Metadata,
    leading_digits: OnceLock<Option<Regex>>,
    types: OnceLock<TypePatterns>,
}

/// A region's `national_prefix` and `national_prefix_for_parsing`.
struct NationalPrefix {
    prefix: Option<&'static str>,
    for_parsing: Option<Regex>,
}

/// A descriptor's pattern with its possible lengths: `Descriptor::is_match` without the cache.
struct Pattern {
    regex: Regex,
    possible_length: &'static [u16],
}

/// One region's descriptors in `validator::number_type`'s order.
struct TypePatterns {
    general: Pattern,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail: the first
    /// that matches decides.
    ordered: Vec<(Pattern, Type)>,
    fixed_line: Option<Pattern>,
    mobile: Option<Pattern>,
    /// Fixed-line and mobile have the same pattern source (the US and the rest of NANP).
    same_fixed_and_mobile: bool,
}

impl Code {
    fn new(regions: Vec<&'static Metadata>) -> Self {
        Code {
            length_bounds: bounds(&regions),
            regions: regions
                .into_iter()
                .map(|meta| Region {
                    meta,
                    leading_digits: OnceLock::new(),
                    types: OnceLock::new(),
                })
                .collect(),
            national_prefixes: OnceLock::new(),
        }
    }

    fn national_prefixes(&self) -> &[NationalPrefix] {
        self.national_prefixes.get_or_init(|| {
            let mut seen = Vec::new();
            for region in &self.regions {
                let prefix = region.meta.national_prefix();
                let source = region
                    .meta
                    .national_prefix_for_parsing()
                    .map(|p| p.as_str());
                if !seen.contains(&(prefix, source)) {
                    seen.push((prefix, source));
                }
            }
            seen.into_iter()
                .map(|(prefix, source)| NationalPrefix {
                    prefix,
                    for_parsing: source.map(compile),
                })
                .collect()
        })
    }
}

impl Region {
    fn leading_digits(&self) -> Option<&Regex> {
        self.leading_digits
            .get_or_init(|| self.meta.leading_digits().map(|p| compile(p.as_str())))
            .as_ref()
    }

    fn types(&self) -> &TypePatterns {
        self.types.get_or_init(|| {
            let d = self.meta.descriptors();
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
            TypePatterns {
                general: Pattern::new(d.general()),
                ordered: ordered
                    .into_iter()
                    .filter_map(|(desc, kind)| Some((Pattern::new(desc?), kind)))
                    .collect(),
                fixed_line: d.fixed_line().map(Pattern::new),
                mobile: d.mobile().map(Pattern::new),
                same_fixed_and_mobile: d.fixed_line().map(|f| f.national_number().as_str())
                    == d.mobile().map(|m| m.national_number().as_str()),
            }
        })
    }
}

impl Pattern {
    fn new(desc: &'static Descriptor) -> Self {
        Pattern {
            regex: compile(desc.national_number().as_str()),
            possible_length: desc.possible_length(),
        }
    }

    /// `Descriptor::is_match`: a possible length (when the descriptor lists any), and a match
    /// that starts at the first digit.
    fn is_match(&self, national: &str) -> bool {
        let length_ok = self.possible_length.is_empty()
            || u16::try_from(national.len()).is_ok_and(|l| self.possible_length.contains(&l));
        length_ok && self.regex.is_match(national)
    }
}

/// A metadata pattern, compiled with the crate's options (`metadata/database.rs`:
/// `ignore_whitespace`) and anchored at the start, for the crate's test "the leftmost match
/// starts at 0" (`Descriptor::is_match`, `validator::source_for`, `helper::national_number`):
/// the leftmost match is the one with the smallest start, so it starts at 0 exactly when some
/// match does, and an anchored search gives up at the first digit that cannot start one. The
/// newline ends a trailing `#` comment, which `ignore_whitespace` allows.
fn compile(source: &str) -> Regex {
    RegexBuilder::new(&format!("^(?:{source}\n)"))
        .ignore_whitespace(true)
        .build()
        // The crate compiles the same source with the same options before it matches anything
        // (and panics if it cannot), so a pattern that fails here was never usable.
        .unwrap_or_else(|e| panic!("a phonenumber metadata pattern does not compile: {e}"))
}

/// The region metadata and type of a national number (leading zeros kept) under `code`;
/// `None` if no region of the code claims it.
pub(super) fn region_and_type(code: u16, national: &str) -> Option<(&'static Metadata, Type)> {
    let regions = &CODES.get(&code)?.regions;
    if let [only] = regions.as_slice() {
        return Some((only.meta, number_type(only, national)));
    }
    regions
        .iter()
        .find_map(|region| match region.leading_digits() {
            Some(pattern) => pattern
                .is_match(national)
                .then(|| (region.meta, number_type(region, national))),
            None => {
                let kind = number_type(region, national);
                (kind != Type::Unknown).then_some((region.meta, kind))
            }
        })
}

/// Shortest and longest national number any line type of any region of `code` allows.
pub(super) fn length_bounds(code: u16) -> Option<(usize, usize)> {
    CODES.get(&code)?.length_bounds
}

/// The general descriptor's own length list is empty in the crate's data, so we take the union
/// over the per-type descriptors.
fn bounds(regions: &[&'static Metadata]) -> Option<(usize, usize)> {
    let lengths = regions
        .iter()
        .flat_map(|meta| line_descriptors(meta))
        .flatten()
        .flat_map(|desc| desc.possible_length().iter().copied())
        .map(usize::from);
    let (min, max) = lengths.fold((usize::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
    (min <= max).then_some((min, max))
}

/// A region's general descriptor and those of the line types a number can have (not the short
/// codes, emergency numbers and the like, which callverify never dials).
pub(super) fn line_descriptors(meta: &'static Metadata) -> [Option<&'static Descriptor>; 11] {
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
}

/// Length of the country calling code at the start of `digits` (E.164 without `+`).
/// ITU codes are prefix-free, so the first length that names a known code is the one.
pub(super) fn country_code_len(digits: &str) -> Option<usize> {
    (1..=3).find(|&len| {
        digits
            .get(..len)
            .and_then(|code| code.parse::<u16>().ok())
            .is_some_and(|code| CODES.contains_key(&code))
    })
}

/// Country code and national number of an E.164 number's digits (without `+`), when
/// `phonenumber::parse` would certainly read them as exactly that: the crate's own steps
/// (`parser/mod.rs`, `parser/helper.rs`) change nothing for them. `None` whenever it might do
/// something else (error, strip a national prefix, …): the caller then asks the crate.
///
/// The crate reads `+` and the digits, takes the first 1–3 digits that name a known code (as
/// [`country_code_len`]), then, for the region it picks, strips a national prefix when the
/// region's `national_prefix_for_parsing` matches at the start, or, without that pattern,
/// when the number starts with the `national_prefix`; and once more if what is left starts with
/// the `national_prefix`. We refuse if that could happen for any region of the code, so which
/// region the crate picks does not matter.
pub(super) fn plain_e164(digits: &str) -> Option<(u16, &str)> {
    // Shorter numbers are the crate's errors (too short, not viable); a leading 0 is not a
    // country code.
    if digits.len() < 4 || digits.starts_with('0') {
        return None;
    }
    let code_len = country_code_len(digits)?;
    let code: u16 = digits[..code_len].parse().ok()?;
    let national = &digits[code_len..];
    // The crate's national-number bounds (2..=17 digits, below 2^56 once leading zeros are
    // dropped) hold for every length up to E.164's 15 digits; an all-zero number is its error.
    if !(2..=15).contains(&national.len()) || national.bytes().all(|b| b == b'0') {
        return None;
    }
    let may_strip = CODES.get(&code)?.national_prefixes().iter().any(|p| {
        p.prefix.is_some_and(|prefix| national.starts_with(prefix))
            || p.for_parsing
                .as_ref()
                .is_some_and(|re| re.is_match(national))
    });
    (!may_strip).then_some((code, national))
}

/// `validator::number_type`, in the same order; types we never route on (emergency, short
/// codes, …) are left as unknown, which callers treat as invalid.
fn number_type(region: &Region, national: &str) -> Type {
    let t = region.types();
    if !t.general.is_match(national) {
        return Type::Unknown;
    }
    if let Some((_, kind)) = t.ordered.iter().find(|(p, _)| p.is_match(national)) {
        return *kind;
    }
    let matches = |p: &Option<Pattern>| p.as_ref().is_some_and(|p| p.is_match(national));
    if matches(&t.fixed_line) {
        return if t.same_fixed_and_mobile || matches(&t.mobile) {
            Type::FixedLineOrMobile
        } else {
            Type::FixedLine
        };
    }
    if matches(&t.mobile) {
        Type::Mobile
    } else {
        Type::Unknown
    }
}
