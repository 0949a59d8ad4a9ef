//! The IETF draft fields `RateLimit` and `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
//!
//! ```text
//! RateLimit: "default";r=0;t=12
//! RateLimit-Policy: "default";q=100;w=60
//! ```
//!
//! Structured-field lists of policies: `r` is what remains, `t` the seconds until it resets,
//! `q` the quota. The draft's earlier dictionary form (`limit=100, remaining=0, reset=12`) is
//! read too. Several policies: the most constraining one (least remaining, then latest reset)
//! is reported.
//!
//! Parameters follow RFC 8941 §3.1.2: a bare key is a boolean true (`"default";r=0;t=12;partial`),
//! `;flag=?1` and `;flag=?0` are booleans, and parameters other than `r`, `t` and `q` are
//! skipped whatever their value (a string, a token, a decimal, a byte sequence). Whitespace
//! around `;` and `=` is tolerated.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::values::{self, split_outside_quotes};
use super::ServerHint;

static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

#[derive(Default)]
struct Member<'a> {
    name: &'a str,
    remaining: Option<u64>,
    reset: Option<Duration>,
    quota: Option<u64>,
}

/// Reads `RateLimit` (and the quota from `RateLimit-Policy`).
pub(crate) fn parse(
    headers: &HeaderMap,
    _status: StatusCode,
    _now: SystemTime,
) -> Option<ServerHint> {
    let mut best: Option<Member<'_>> = None;
    let mut dictionary = Member::default();
    for value in headers.get_all(&RATELIMIT) {
        let Some(text) = ascii(value) else { continue };
        for member in split_outside_quotes(text, b',') {
            let member = member.trim();
            if member.is_empty() {
                continue;
            }
            // NOTE: the earlier draft's dictionary form: one key per member.
            if let Some((key, v)) = member.split_once('=') {
                if !key.trim().starts_with('"') && !key.contains(';') {
                    // NOTE: a member's value may carry parameters (`remaining=0;w=60`).
                    let v = bare_value(v);
                    match key.trim() {
                        "remaining" => dictionary.remaining = values::integer(v),
                        "reset" => dictionary.reset = values::seconds(v),
                        "limit" => dictionary.quota = values::integer(v),
                        _ => {}
                    }
                    continue;
                }
            }
            let Some(parsed) = item(member) else {
                values::malformed(&RATELIMIT, value);
                continue;
            };
            if parsed.remaining.is_none() {
                values::malformed(&RATELIMIT, value);
                continue;
            }
            let tighter = match &best {
                None => true,
                Some(b) => {
                    (parsed.remaining, std::cmp::Reverse(parsed.reset))
                        < (b.remaining, std::cmp::Reverse(b.reset))
                }
            };
            if tighter {
                best = Some(parsed);
            }
        }
    }
    let chosen = match best {
        Some(b) => b,
        None if dictionary.remaining.is_some() => dictionary,
        None => return None,
    };
    let quota = chosen.quota.or_else(|| policy_quota(headers, chosen.name));
    let mut hint = ServerHint {
        limit: quota,
        remaining: chosen.remaining,
        reset: chosen.reset,
        ..ServerHint::default()
    };
    hint.family = Some(RATELIMIT.as_str());
    Some(hint)
}

fn ascii(value: &HeaderValue) -> Option<&str> {
    match value.to_str() {
        Ok(s) => Some(s),
        Err(_) => {
            values::malformed(&RATELIMIT, value);
            None
        }
    }
}

/// An item with parameters: `"name";r=0;t=12`, or `name;r=0;t=12` with a token name.
fn item(member: &str) -> Option<Member<'_>> {
    let mut parts = split_outside_quotes(member, b';');
    let name = parts.next()?.trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    let mut parsed = Member {
        name,
        ..Member::default()
    };
    for param in parts {
        let param = param.trim();
        // NOTE: RFC 8941 §3.1.2: a parameter without `=` is a boolean true (`;partial`).
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (param, None),
        };
        match key {
            // A trailing or doubled `;`: tolerated.
            "" if value.is_none() => {}
            "r" => parsed.remaining = Some(values::integer(value?)?),
            "t" => parsed.reset = Some(values::whole_seconds(value?)?),
            "q" => parsed.quota = Some(values::integer(value?)?),
            _ => {}
        }
    }
    Some(parsed)
}

/// The `q` of the policy called `name` in `RateLimit-Policy`, or of its only policy.
fn policy_quota(headers: &HeaderMap, name: &str) -> Option<u64> {
    let mut first = None;
    let mut count = 0;
    for value in headers.get_all(&RATELIMIT_POLICY) {
        let Ok(text) = value.to_str() else {
            values::malformed(&RATELIMIT_POLICY, value);
            continue;
        };
        for member in split_outside_quotes(text, b',') {
            let Some(policy) = item(member.trim()) else {
                values::malformed(&RATELIMIT_POLICY, value);
                continue;
            };
            count += 1;
            if policy.name == name && !name.is_empty() {
                return policy.quota;
            }
            first = first.or(policy.quota);
        }
    }
    (count == 1).then_some(first).flatten()
}

/// A dictionary member's value without its parameters.
fn bare_value(s: &str) -> &str {
    split_outside_quotes(s, b';').next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&'static str, &'static str)]) -> Option<ServerHint> {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(*k, HeaderValue::from_static(v));
        }
        parse(&headers, StatusCode::OK, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn reads_remaining_and_reset() {
        let h = read(&[("ratelimit", r#""default";r=0;t=12"#)]).unwrap();
        assert_eq!(
            (h.remaining, h.reset),
            (Some(0), Some(Duration::from_secs(12)))
        );
        assert_eq!(h.limit, None);
    }

    #[test]
    fn takes_quota_from_the_matching_policy() {
        let h = read(&[
            ("ratelimit", r#""hour";r=10;t=100"#),
            (
                "ratelimit-policy",
                r#""second";q=3;w=1, "hour";q=1000;w=3600"#,
            ),
        ])
        .unwrap();
        assert_eq!((h.limit, h.remaining), (Some(1000), Some(10)));
    }

    #[test]
    fn reports_the_most_constraining_policy() {
        let h = read(&[("ratelimit", r#""a";r=5;t=1, "b";r=0;t=30, "c";r=0;t=2"#)]).unwrap();
        assert_eq!(
            (h.remaining, h.reset),
            (Some(0), Some(Duration::from_secs(30)))
        );
    }

    #[test]
    fn reads_the_dictionary_form() {
        let h = read(&[("ratelimit", "limit=100, remaining=0, reset=7")]).unwrap();
        assert_eq!(
            (h.limit, h.remaining, h.reset),
            (Some(100), Some(0), Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn boolean_parameters_do_not_discard_the_item() {
        for field in [
            r#""default";r=0;t=12;partial"#,
            r#""default";partial;r=0;t=12"#,
            r#""default";r=0;t=12;flag=?1"#,
            r#""default";r=0;flag=?0;t=12"#,
            r#""default"; r=0; t=12; partial"#,
            r#"default;r=0;t=12;partial"#,
            r#""default";r=0;t=12;pk=:cHJvY2Vzcw==:;note="a;b=c""#,
            r#""default";r=0;t=12;"#,
        ] {
            let h = read(&[("ratelimit", field)]).expect(field);
            assert_eq!(
                (h.remaining, h.reset),
                (Some(0), Some(Duration::from_secs(12))),
                "{field}"
            );
            assert_eq!(h.pause(), Some(Duration::from_secs(12)), "{field}");
        }
    }

    #[test]
    fn boolean_parameters_in_the_policy_keep_its_quota() {
        let h = read(&[
            ("ratelimit", r#""hour";r=0;t=100"#),
            ("ratelimit-policy", r#""hour";q=1000;w=3600;partial"#),
        ])
        .unwrap();
        assert_eq!(h.limit, Some(1000));
        let h = read(&[
            ("ratelimit", r#""hour";r=0;t=100"#),
            (
                "ratelimit-policy",
                r#""hour";partial;q=1000;flag=?1;w=3600"#,
            ),
        ])
        .unwrap();
        assert_eq!(h.limit, Some(1000));
    }

    #[test]
    fn dictionary_members_may_carry_parameters() {
        let h = read(&[("ratelimit", "limit=100;w=60, remaining=0;x, reset=7;y=?1")]).unwrap();
        assert_eq!(
            (h.limit, h.remaining, h.reset),
            (Some(100), Some(0), Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn known_keys_must_be_integers_even_as_booleans() {
        for bad in [
            r#""default";r;t=12"#,
            r#""default";r=?1;t=12"#,
            r#""default";r=0;t=?1"#,
        ] {
            assert_eq!(read(&[("ratelimit", bad)]), None, "{bad}");
        }
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in [
            r#""default";r=-1;t=12"#,
            r#""default";r=zero;t=12"#,
            r#""default";t=12"#,
            r#""default";r=0;t=1.5"#,
            r#""default";r=0;t"#,
            "",
            ",,,",
        ] {
            assert_eq!(read(&[("ratelimit", bad)]), None, "{bad}");
        }
    }
}
