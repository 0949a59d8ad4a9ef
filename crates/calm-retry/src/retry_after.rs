//! Parsing the `Retry-After` response header (RFC 9110 §10.2.3).

use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderValue};

/// The largest delay a `Retry-After` is taken to name (about 136 years); larger numbers are
/// clamped to it rather than refused, so "very long" stays "very long".
pub const MAX_DELAY: Duration = Duration::from_secs(u32::MAX as u64);

/// A parsed `Retry-After` value: delta-seconds or an HTTP-date.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use calm_retry::retry_after::RetryAfter;
/// use http::HeaderValue;
///
/// let delay = RetryAfter::parse(&HeaderValue::from_static("120")).unwrap();
/// assert_eq!(delay, RetryAfter::Delay(Duration::from_secs(120)));
///
/// let value = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
/// let date = RetryAfter::parse(&value).unwrap();
/// let server_now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:07 GMT").unwrap();
/// assert_eq!(date.delay_from(server_now), Some(Duration::from_secs(30)));
///
/// // negative, fractional and garbage values are ignored
/// for bad in ["-5", "1.5", "soon", ""] {
///     assert_eq!(RetryAfter::parse(&HeaderValue::from_static(bad)), None);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 120` — wait that long (clamped to [`MAX_DELAY`]).
    Delay(Duration),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT` — wait until then.
    Date(SystemTime),
}

impl RetryAfter {
    /// Parses one header value. Malformed values (negative or fractional numbers, anything
    /// that is neither digits nor an HTTP-date) give `None`.
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?.trim();
        if text.is_empty() {
            return None;
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            // NOTE: all digits, so the only way parse can fail is overflow: clamp instead.
            let secs = text.parse::<u64>().unwrap_or(u64::MAX);
            return Some(RetryAfter::Delay(Duration::from_secs(secs).min(MAX_DELAY)));
        }
        httpdate::parse_http_date(text).ok().map(RetryAfter::Date)
    }

    /// Parses the first `Retry-After` header of `headers`, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::retry_after::{RetryAfter, MAX_DELAY};
    /// use http::HeaderMap;
    ///
    /// let mut headers = HeaderMap::new();
    /// assert_eq!(RetryAfter::from_headers(&headers), None);
    /// headers.insert("retry-after", "99999999999999".parse().unwrap());
    /// // Too large to mean anything but "very long": clamped, not refused.
    /// assert_eq!(RetryAfter::from_headers(&headers), Some(RetryAfter::Delay(MAX_DELAY)));
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers.get(header::RETRY_AFTER).and_then(Self::parse)
    }

    /// How long to wait, measured from `now` (the wall-clock time the server's date is
    /// compared with). A date that is not after `now` gives `None`: like a negative
    /// delay, it is ignored.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use calm_retry::retry_after::RetryAfter;
    ///
    /// let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    /// let date = RetryAfter::Date(at);
    /// assert_eq!(date.delay_from(at - Duration::from_secs(5)), Some(Duration::from_secs(5)));
    /// assert_eq!(date.delay_from(at), None); // not after `now`
    /// // A delay does not depend on `now`.
    /// let delay = RetryAfter::Delay(Duration::from_secs(3));
    /// assert_eq!(delay.delay_from(at), Some(Duration::from_secs(3)));
    /// ```
    pub fn delay_from(&self, now: SystemTime) -> Option<Duration> {
        match *self {
            RetryAfter::Delay(delay) => Some(delay),
            RetryAfter::Date(date) => match date.duration_since(now) {
                Ok(delay) if !delay.is_zero() => Some(delay.min(MAX_DELAY)),
                _ => None,
            },
        }
    }
}

/// The wait named by a response's `Retry-After`.
///
/// HTTP-dates are measured from the response's own `Date` header when it has a valid one —
/// both come from the server's clock, so clock skew between client and server cancels out —
/// and from `wall_clock()` otherwise.
pub(crate) fn hint(headers: &HeaderMap, wall_clock: fn() -> SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?;
    let Some(after) = RetryAfter::parse(value) else {
        tracing::debug!(value = ?value, "ignoring malformed Retry-After");
        return None;
    };
    let now = match after {
        RetryAfter::Delay(delay) => return Some(delay),
        RetryAfter::Date(_) => headers
            .get(header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
            .unwrap_or_else(wall_clock),
    };
    after.delay_from(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    fn epoch() -> SystemTime {
        SystemTime::UNIX_EPOCH
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(
            hint(&headers(&[("retry-after", "7")]), epoch),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            hint(&headers(&[("retry-after", " 0 ")]), epoch),
            Some(Duration::ZERO)
        );
        assert_eq!(
            hint(
                &headers(&[("retry-after", "99999999999999999999999999")]),
                epoch
            ),
            Some(MAX_DELAY)
        );
    }

    #[test]
    fn malformed_is_ignored() {
        for bad in [
            "-1",
            "+3",
            "1.5",
            "1e3",
            "3 s",
            "tomorrow",
            "Sun, 99 Nov 1994",
        ] {
            assert_eq!(
                hint(&headers(&[("retry-after", bad)]), epoch),
                None,
                "{bad}"
            );
        }
        assert_eq!(hint(&HeaderMap::new(), epoch), None);
    }

    #[test]
    fn date_relative_to_the_date_header() {
        let h = headers(&[
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "Sun, 06 Nov 1994 08:49:30 GMT"),
        ]);
        // the wall clock is ignored when the response has a Date
        assert_eq!(hint(&h, SystemTime::now), Some(Duration::from_secs(7)));
    }

    #[test]
    fn date_relative_to_the_wall_clock() {
        fn clock() -> SystemTime {
            httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:00 GMT").unwrap()
        }
        let h = headers(&[("retry-after", "Sun, 06 Nov 1994 08:50:00 GMT")]);
        assert_eq!(hint(&h, clock), Some(Duration::from_secs(60)));
        // a malformed Date falls back to the wall clock too
        let h = headers(&[
            ("retry-after", "Sun, 06 Nov 1994 08:50:00 GMT"),
            ("date", "yesterday"),
        ]);
        assert_eq!(hint(&h, clock), Some(Duration::from_secs(60)));
    }

    #[test]
    fn past_dates_are_ignored() {
        let h = headers(&[
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert_eq!(hint(&h, epoch), None);
        let h = headers(&[
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "Mon, 07 Nov 1994 08:49:37 GMT"),
        ]);
        assert_eq!(hint(&h, epoch), None);
    }
}
