//! Value grammars shared by the header families: integers, seconds, Go-style durations,
//! resets that may be delta-seconds or epoch seconds, and structured-field lists.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::ServerHint;

/// Hints further away than this are nonsense, not instructions: they are ignored.
pub(crate) const MAX_HINT: Duration = Duration::from_secs(366 * 24 * 3600);

/// A reset value at or above this many seconds is an epoch timestamp (GitHub), not a delta:
/// 1e9 s is 31 years as a delta but 2001-09-09 as a date.
const EPOCH_THRESHOLD_SECS: u128 = 1_000_000_000;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Logs a header that is present but could not be understood.
pub(crate) fn malformed(name: &HeaderName, value: &HeaderValue) {
    tracing::debug!(header = %name, value = ?value, "ignoring malformed rate limit hint");
}

/// The first value of header `name` as visible ASCII, or `None` (logged) if it is not.
pub(crate) fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let value = headers.get(name)?;
    match value.to_str() {
        Ok(s) => Some(s.trim()),
        Err(_) => {
            malformed(name, value);
            None
        }
    }
}

/// A non-negative integer: ASCII digits only.
pub(crate) fn integer(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `digits[.digits]` times `unit` nanoseconds, or `None` if `s` is not exactly that.
fn decimal(s: &str, unit: u128) -> Option<u128> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // NOTE: bounded lengths keep the arithmetic inside u128: 10^20 * 3.6e12 < 2^128.
    if int.len() > 20 {
        return None;
    }
    let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac = &frac[..frac.len().min(18)];
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let scale = 10u128.pow(frac.len() as u32);
    int_value
        .checked_mul(unit)?
        .checked_add(frac_value * unit / scale)
}

fn bounded(nanos: u128) -> Option<Duration> {
    let d = Duration::from_nanos(u64::try_from(nanos).ok()?);
    (d <= MAX_HINT).then_some(d)
}

/// Delta-seconds, possibly fractional (`30`, `1.5`).
pub(crate) fn seconds(s: &str) -> Option<Duration> {
    bounded(decimal(s.trim(), NANOS_PER_SEC)?)
}

/// Whole delta-seconds (`30`).
pub(crate) fn whole_seconds(s: &str) -> Option<Duration> {
    let d = Duration::from_secs(integer(s)?);
    (d <= MAX_HINT).then_some(d)
}

/// A Go-style duration string as OpenAI sends: `12ms`, `1.5s`, `6m0s`, `1h2m3.5s`.
pub(crate) fn go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            _ => return None,
        };
        total = total.checked_add(decimal(number, unit_nanos)?)?;
        rest = tail;
    }
    bounded(total)
}

/// A reset: delta-seconds, epoch seconds (told apart by size), or a Go-style duration.
/// Returns how long from `now` the reset is; a reset in the past is zero.
pub(crate) fn reset(s: &str, now: SystemTime) -> Option<Duration> {
    let s = s.trim();
    if s.bytes().any(|b| b.is_ascii_alphabetic()) || !s.is_ascii() {
        return go_duration(s);
    }
    let nanos = decimal(s, NANOS_PER_SEC)?;
    if nanos >= EPOCH_THRESHOLD_SECS * NANOS_PER_SEC {
        let at = UNIX_EPOCH.checked_add(Duration::from_nanos(u64::try_from(nanos).ok()?))?;
        let d = at.duration_since(now).unwrap_or(Duration::ZERO);
        return (d <= MAX_HINT).then_some(d);
    }
    bounded(nanos)
}

/// The `limit` / `remaining` / `reset` triple of one header family, if `remaining` or
/// `reset` is present. Malformed values are logged and left out.
pub(crate) fn triple(
    headers: &HeaderMap,
    [limit, remaining, reset_name]: [&'static HeaderName; 3],
    now: SystemTime,
) -> Option<ServerHint> {
    let number = |name: &HeaderName| {
        let text = text(headers, name)?;
        // NOTE: some servers append a policy (`100, 100;w=60`); the first number is the one.
        let first = text.split([',', ';']).next().unwrap_or(text);
        let n = integer(first);
        if n.is_none() {
            malformed(name, headers.get(name)?);
        }
        n
    };
    let remaining = number(remaining);
    let reset = text(headers, reset_name).and_then(|t| {
        let d = reset(t, now);
        if d.is_none() {
            malformed(reset_name, headers.get(reset_name)?);
        }
        d
    });
    if remaining.is_none() && reset.is_none() {
        return None;
    }
    let mut hint = ServerHint {
        limit: number(limit),
        remaining,
        reset,
        ..ServerHint::default()
    };
    hint.family = Some(reset_name.as_str());
    Some(hint)
}

/// Splits a structured-field list or parameter string on `sep`, outside quoted strings.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let bytes = s.as_bytes();
        let (mut quoted, mut escaped) = (false, false);
        for (i, &b) in bytes.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == sep && !quoted {
                rest = Some(&s[i + 1..]);
                return Some(&s[..i]);
            }
        }
        rest = None;
        Some(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn integers() {
        assert_eq!(integer(" 42 "), Some(42));
        for bad in ["", "-5", "+5", "4 2", "1e3", "99999999999999999999999"] {
            assert_eq!(integer(bad), None, "{bad}");
        }
    }

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(seconds("30"), Some(Duration::from_secs(30)));
        assert_eq!(seconds("1.5"), Some(ms(1500)));
        assert_eq!(seconds(".25"), Some(ms(250)));
        for bad in ["", ".", "-1", "1.2.3", "soon", "99999999999"] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("12ms"), Some(ms(12)));
        assert_eq!(go_duration("1.5s"), Some(ms(1500)));
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("1h2m3.5s"), Some(ms(3_723_500)));
        assert_eq!(go_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "s", "12", "12x", "1.2.3s", "-1s", "ms12", "9999999h"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn resets_detect_their_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(reset("30", now), Some(Duration::from_secs(30)));
        assert_eq!(reset("1700000042", now), Some(Duration::from_secs(42)));
        assert_eq!(reset("1600000000", now), Some(Duration::ZERO));
        assert_eq!(reset("340ms", now), Some(ms(340)));
        assert_eq!(reset("1.25", now), Some(ms(1250)));
        assert_eq!(reset("1700000000.5", now), Some(ms(500)));
        for bad in ["", "soon", "-5", "99999999999999", "1e9"] {
            assert_eq!(reset(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn splits_outside_quotes() {
        let parts: Vec<_> = split_outside_quotes(r#""a,b";r=1, "c\"";t=2"#, b',').collect();
        assert_eq!(parts, [r#""a,b";r=1"#, r#" "c\"";t=2"#]);
        assert_eq!(split_outside_quotes("", b',').count(), 1);
    }
}
