//! Time formatting. The clock itself is Redis `TIME` (one clock for every instance); this module
//! only turns its Unix seconds into the RFC 3339 strings the API shows.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `2026-11-27T23:59:00Z` for a Unix timestamp in seconds.
pub fn rfc3339(unix_secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_seconds() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_737_600), "2026-11-27T00:00:00Z");
    }
}
