//! The older draft's separate fields: `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` (reset in delta-seconds; epoch seconds and duration strings are
//! recognised too, as for the vendor fields).

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, StatusCode};

use super::values;
use super::ServerHint;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Reads `RateLimit-Limit`, `-Remaining` and `-Reset`.
pub(crate) fn parse(
    headers: &HeaderMap,
    _status: StatusCode,
    now: SystemTime,
) -> Option<ServerHint> {
    values::triple(headers, [&LIMIT, &REMAINING, &RESET], now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    #[test]
    fn reads_the_triple() {
        let mut headers = HeaderMap::new();
        headers.insert(&LIMIT, HeaderValue::from_static("100"));
        headers.insert(&REMAINING, HeaderValue::from_static("0"));
        headers.insert(&RESET, HeaderValue::from_static("12"));
        let h = parse(&headers, StatusCode::OK, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(
            (h.limit, h.remaining, h.reset),
            (Some(100), Some(0), Some(Duration::from_secs(12)))
        );
    }

    #[test]
    fn absent_or_malformed_is_nothing() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            parse(&headers, StatusCode::OK, SystemTime::UNIX_EPOCH),
            None
        );
        headers.insert(&REMAINING, HeaderValue::from_static("-1"));
        headers.insert(&RESET, HeaderValue::from_static("soon"));
        assert_eq!(
            parse(&headers, StatusCode::OK, SystemTime::UNIX_EPOCH),
            None
        );
    }
}
