//! Vendor fields: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`, and
//! OpenAI's `-requests` / `-tokens` variants (`X-RateLimit-Remaining-Requests`, …).
//!
//! The reset may be delta-seconds, epoch seconds (GitHub: told apart by size, see
//! [`values::reset`]) or a duration string such as `12ms`, `1.5s`, `6m0s` (OpenAI).

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, StatusCode};

use super::values;
use super::ServerHint;

static FAMILIES: [[HeaderName; 3]; 3] = [
    [
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderName::from_static("x-ratelimit-reset"),
    ],
    [
        HeaderName::from_static("x-ratelimit-limit-requests"),
        HeaderName::from_static("x-ratelimit-remaining-requests"),
        HeaderName::from_static("x-ratelimit-reset-requests"),
    ],
    [
        HeaderName::from_static("x-ratelimit-limit-tokens"),
        HeaderName::from_static("x-ratelimit-remaining-tokens"),
        HeaderName::from_static("x-ratelimit-reset-tokens"),
    ],
];

/// Reads the vendor fields. When several variants are present, a spent one (nothing
/// remaining, latest reset) wins; otherwise the first present of plain, `-requests`, `-tokens`.
pub(crate) fn parse(
    headers: &HeaderMap,
    _status: StatusCode,
    now: SystemTime,
) -> Option<ServerHint> {
    let mut chosen: Option<ServerHint> = None;
    for [limit, remaining, reset] in &FAMILIES {
        let Some(hint) = values::triple(headers, [limit, remaining, reset], now) else {
            continue;
        };
        chosen = match chosen {
            None => Some(hint),
            Some(c)
                if hint.remaining == Some(0)
                    && (c.remaining != Some(0) || hint.reset > c.reset) =>
            {
                Some(hint)
            }
            keep => keep,
        };
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::{Duration, UNIX_EPOCH};

    fn read(pairs: &[(&'static str, &'static str)]) -> Option<ServerHint> {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(*k, HeaderValue::from_static(v));
        }
        parse(&headers, StatusCode::OK, now)
    }

    #[test]
    fn github_epoch_reset() {
        let h = read(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000030"),
        ])
        .unwrap();
        assert_eq!(
            (h.limit, h.remaining, h.reset),
            (Some(5000), Some(0), Some(Duration::from_secs(30)))
        );
    }

    #[test]
    fn delta_and_duration_resets() {
        let h = read(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "12")]).unwrap();
        assert_eq!(h.reset, Some(Duration::from_secs(12)));
        let h = read(&[
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset", "340ms"),
        ])
        .unwrap();
        assert_eq!(h.reset, Some(Duration::from_millis(340)));
    }

    #[test]
    fn openai_spent_tokens_win() {
        let h = read(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ])
        .unwrap();
        assert_eq!(
            (h.remaining, h.reset),
            (Some(0), Some(Duration::from_secs(360)))
        );
        let h = read(&[
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
        ])
        .unwrap();
        assert_eq!(h.remaining, Some(59));
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in ["soon", "-5", "99999999999999999999999", "1e9", "12 parsecs"] {
            let h = read(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", bad)]).unwrap();
            assert_eq!(h.reset, None, "{bad}");
            assert_eq!(read(&[("x-ratelimit-remaining", bad)]), None, "{bad}");
        }
    }
}
