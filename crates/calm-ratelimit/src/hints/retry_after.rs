//! `Retry-After` (RFC 9110 §10.2.3) on throttling responses: delta-seconds or an HTTP-date.

use std::time::{Duration, SystemTime};

use http::{header::RETRY_AFTER, HeaderMap, StatusCode};

use super::values::{self, MAX_HINT};
use super::ServerHint;

/// `Retry-After` on a 429, a 503, or a 403 (GitHub's secondary limits answer 403 with it).
/// On other statuses the header is about something else and is not read.
pub(crate) fn parse(
    headers: &HeaderMap,
    status: StatusCode,
    now: SystemTime,
) -> Option<ServerHint> {
    if !matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE | StatusCode::FORBIDDEN
    ) {
        return None;
    }
    let text = values::text(headers, &RETRY_AFTER)?;
    let Some(wait) = value(text, now) else {
        if let Some(raw) = headers.get(RETRY_AFTER) {
            values::malformed(&RETRY_AFTER, raw);
        }
        return None;
    };
    Some(ServerHint {
        throttled: true,
        retry_after: Some(wait),
        ..ServerHint::default()
    })
}

/// How long from `now` a `Retry-After` value says to wait; a date in the past is zero.
fn value(text: &str, now: SystemTime) -> Option<Duration> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs = values::integer(text)?;
        let wait = Duration::from_secs(secs);
        return (wait <= MAX_HINT).then_some(wait);
    }
    let at = httpdate::parse_http_date(text).ok()?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    (wait <= MAX_HINT).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn hint(status: u16, value: &'static str) -> Option<Duration> {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        parse(&headers, StatusCode::from_u16(status).unwrap(), now)?.retry_after
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(hint(429, "30"), Some(Duration::from_secs(30)));
        assert_eq!(hint(503, "0"), Some(Duration::ZERO));
        assert_eq!(hint(403, "7"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn http_date() {
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            hint(429, "Tue, 14 Nov 2023 22:13:50 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            hint(429, "Tue, 14 Nov 2023 22:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn other_statuses_are_not_read() {
        assert_eq!(hint(200, "30"), None);
        assert_eq!(hint(500, "30"), None);
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in [
            "soon",
            "-5",
            "1.5",
            "",
            "99999999999",
            "99999999999999999999999",
        ] {
            assert_eq!(hint(429, bad), None, "{bad}");
        }
    }
}
