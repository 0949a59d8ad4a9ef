//! Canonical forms of the parts of a URL that have several spellings: ports, hosts (IPv4
//! numbers, internationalized names) and percent-escapes in paths.
//!
//! One function per part, used both when a [`BaseUrl`](super::BaseUrl) is parsed and when
//! [`resolve`](super::BaseUrl::resolve) compares an absolute request URI with it, so that the
//! two can never disagree on what "the same" means. Everything here is off the hot path:
//! `resolve` only calls into it when the cheap byte comparison failed.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// The longest port string accepted, leading zeros included.
pub(crate) const MAX_PORT_LEN: usize = 16;

/// Why a port is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PortError {
    NotANumber,
    Zero,
    OutOfRange,
    TooLong,
}

impl PortError {
    /// Completes "the port …".
    pub(crate) fn why(self) -> &'static str {
        match self {
            PortError::NotANumber => "is not a number: only the digits 0-9 may follow `:`",
            PortError::Zero => "is 0, which cannot be connected to",
            PortError::OutOfRange => "is above 65535, the largest TCP port",
            PortError::TooLong => {
                "is absurdly long (more than 16 characters); write it without leading zeros"
            }
        }
    }
}

/// Parses the text after the `:` of an authority: `Ok(None)` when it is empty (the scheme's
/// default, RFC 3986 §6.2.3), else a number from 1 to 65535. Leading zeros are allowed
/// (`0443` is 443) up to [`MAX_PORT_LEN`] characters in all.
pub(crate) fn parse_port(port: &str) -> Result<Option<u16>, PortError> {
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::NotANumber);
    }
    if port.len() > MAX_PORT_LEN {
        return Err(PortError::TooLong);
    }
    // NOTE: at most 16 digits, so the value fits a u64 without overflow.
    let value = port.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    match u16::try_from(value) {
        Ok(0) => Err(PortError::Zero),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(PortError::OutOfRange),
    }
}

/// Why a host (other than a bracketed IPv6 literal) is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostError {
    /// A character that cannot appear in a host name (after UTS #46 mapping).
    Char(char),
    /// UTS #46 (IDNA) processing refuses the name.
    Idna,
    /// The host ends in a number, so it is an IPv4 address, but not a valid one.
    Ipv4(&'static str),
}

/// The canonical form of a host that is not an IPv6 literal: an internationalized name mapped
/// to ASCII (punycode) by UTS #46, lowercased; a host that ends in a number read as an IPv4
/// address and written in dotted-decimal form (`127.1`, `0x7f.0.0.1` → `127.0.0.1`), as the
/// WHATWG URL Standard does.
pub(crate) fn normalize_host(host: &str) -> Result<String, HostError> {
    let mapped: Cow<'_, str> = if !host.is_ascii() || has_punycode_label(host) {
        // NOTE: the settings of the WHATWG URL Standard (which the `url` crate uses), plus
        // DNS length checks: a name no resolver accepts is refused here, not at connect time.
        Uts46::new()
            .to_ascii(
                host.as_bytes(),
                AsciiDenyList::URL,
                Hyphens::Allow,
                DnsLength::VerifyAllowRootDot,
            )
            .map_err(|_| HostError::Idna)?
    } else {
        Cow::Borrowed(host)
    };
    if let Some(c) = mapped.chars().find(|&c| !is_host_char(c)) {
        return Err(HostError::Char(c));
    }
    let lower = mapped.to_ascii_lowercase();
    if ends_in_number(&lower) {
        return parse_ipv4(&lower)
            .map(|addr| addr.to_string())
            .map_err(HostError::Ipv4);
    }
    Ok(lower)
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn has_punycode_label(host: &str) -> bool {
    host.split('.').any(|label| {
        label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
    })
}

/// The WHATWG "ends in a number" check: the last label (a trailing `.` aside) is all digits
/// or `0x` followed by hex digits.
fn ends_in_number(host: &str) -> bool {
    let host = match host.strip_suffix('.') {
        Some(rest) if !rest.is_empty() => rest,
        _ => host,
    };
    let last = host.rsplit('.').next().unwrap_or(host);
    (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The WHATWG IPv4 parser: 1 to 4 parts, each decimal, octal (leading `0`) or hexadecimal
/// (`0x`); every part but the last is one byte, the last fills the bytes left.
fn parse_ipv4(host: &str) -> Result<Ipv4Addr, &'static str> {
    let host = match host.strip_suffix('.') {
        Some(rest) if !rest.is_empty() => rest,
        _ => host,
    };
    let mut numbers = [0u64; 4];
    let mut count = 0;
    for part in host.split('.') {
        if count == 4 {
            return Err("it has more than 4 parts");
        }
        numbers[count] = ipv4_number(part)
            .ok_or("a part is not a decimal, octal (leading `0`) or hexadecimal (`0x`) number")?;
        count += 1;
    }
    let (last, init) = numbers[..count].split_last().ok_or("it has no parts")?;
    if init.iter().any(|&n| n > 255) {
        return Err("a part other than the last is above 255");
    }
    if *last >= 1u64 << (8 * (5 - count)) {
        return Err("the last part is too large for the bytes left");
    }
    let value = init
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, &n)| acc + (n << (8 * (3 - i))));
    // NOTE: the checks above keep the value below 2^32.
    u32::try_from(value)
        .map(Ipv4Addr::from)
        .map_err(|_| "the address is above 255.255.255.255")
}

/// One part of a WHATWG IPv4 address; `None` when it is not a number. Values too large for
/// any part saturate, which the caller refuses.
fn ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    digits.chars().try_fold(0u64, |n, c| {
        let digit = c.to_digit(radix)?;
        Some(
            n.saturating_mul(u64::from(radix))
                .saturating_add(u64::from(digit)),
        )
    })
}

/// Whether a byte is an unreserved character (RFC 3986 §2.3), whose percent-encoding means
/// the same as the character itself.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `path` with the escapes of unreserved characters decoded (`%7E` → `~`) and the hex
/// digits of the other escapes uppercased (`%2f` → `%2F`); borrowed when there is no `%`.
/// A `%` not followed by two hex digits is kept as it is.
pub(crate) fn canonical_escapes(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(digits) = escape_at(bytes, i) {
            push_canonical_escape(&mut out, bytes, i, digits);
            i += 3;
        } else {
            // NOTE: copy up to the next `%` at once, so multi-byte characters stay whole.
            let next = bytes[i + 1..]
                .iter()
                .position(|&b| b == b'%')
                .map_or(path.len(), |n| i + 1 + n);
            out.push_str(&path[i..next]);
            i = next;
        }
    }
    Cow::Owned(out)
}

/// Writes the escape `bytes[i..i + 3]`, whose digits are `(hi, lo)`, in canonical form: the
/// character itself when it is unreserved, else `%` and the digits upper-cased.
pub(crate) fn push_canonical_escape(out: &mut String, bytes: &[u8], i: usize, (hi, lo): (u8, u8)) {
    let byte = hi << 4 | lo;
    if is_unreserved(byte) {
        out.push(char::from(byte));
    } else {
        out.push('%');
        out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
        out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
    }
}

/// The two hex digits' values when `bytes[i..]` starts with a well-formed `%XX` escape.
pub(crate) fn escape_at(bytes: &[u8], i: usize) -> Option<(u8, u8)> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    Some((
        hex_value(*bytes.get(i + 1)?)?,
        hex_value(*bytes.get(i + 2)?)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port(""), Ok(None));
        assert_eq!(parse_port("443"), Ok(Some(443)));
        assert_eq!(parse_port("0443"), Ok(Some(443)));
        assert_eq!(parse_port("0000000000000443"), Ok(Some(443)));
        assert_eq!(parse_port("65535"), Ok(Some(65535)));
        assert_eq!(parse_port("00000000000000443"), Err(PortError::TooLong));
        assert_eq!(parse_port("65536"), Err(PortError::OutOfRange));
        assert_eq!(parse_port("70000"), Err(PortError::OutOfRange));
        assert_eq!(parse_port("9999999999999999"), Err(PortError::OutOfRange));
        assert_eq!(parse_port("0"), Err(PortError::Zero));
        assert_eq!(parse_port("000"), Err(PortError::Zero));
        assert_eq!(parse_port("+80"), Err(PortError::NotANumber));
        assert_eq!(parse_port("８０"), Err(PortError::NotANumber));
    }

    #[test]
    fn ipv4_hosts() {
        for (host, expected) in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("0x7f.0.0.1", "127.0.0.1"),
            ("0x7F.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("127.0.0.1.", "127.0.0.1"),
            ("10.0x10000", "10.1.0.0"),
            ("0x", "0.0.0.0"),
            ("0x1.0x", "1.0.0.0"),
            ("4294967295", "255.255.255.255"),
            ("example.com", "example.com"),
            ("1.example", "1.example"),
            ("0xg", "0xg"),
            ("v1.2a", "v1.2a"),
            ("1.2.3.0x1g", "1.2.3.0x1g"),
        ] {
            assert_eq!(normalize_host(host).as_deref(), Ok(expected), "{host}");
        }
        for host in [
            "1.2.3.4.5",
            "256.0.0.1",
            "1.2.3.256",
            "1.16777216",
            "4294967296",
            "example.123",
            "08.0.0.1",
            "1..1",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(normalize_host(host), Err(HostError::Ipv4(_))),
                "{host}: {:?}",
                normalize_host(host)
            );
        }
    }

    #[test]
    fn internationalized_hosts() {
        assert_eq!(
            normalize_host("bücher.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize_host("BÜCHER.Example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize_host("XN--BCHER-KVA.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize_host("１２７.０.０.１").as_deref(),
            Ok("127.0.0.1")
        );
        assert_eq!(normalize_host("xn--a.example"), Err(HostError::Idna));
        assert_eq!(normalize_host("xn--.example"), Err(HostError::Idna));
        assert_eq!(normalize_host("\u{301}a.example"), Err(HostError::Idna));
        assert_eq!(normalize_host("a\u{ffff}.example"), Err(HostError::Idna));
        assert!(normalize_host(&format!("{}ü.example", "a".repeat(70))).is_err());
        assert_eq!(normalize_host("h!"), Err(HostError::Char('!')));
        assert_eq!(normalize_host("exa%6dple.com"), Err(HostError::Char('%')));
    }

    #[test]
    fn escapes() {
        assert_eq!(canonical_escapes("/v1/x"), "/v1/x");
        assert_eq!(canonical_escapes("/%76%31/%7euser"), "/v1/~user");
        assert_eq!(canonical_escapes("/a%2fb%c3%a9"), "/a%2Fb%C3%A9");
        assert_eq!(canonical_escapes("/%2e%2E"), "/..");
        assert_eq!(canonical_escapes("/100%/x%2"), "/100%/x%2");
        assert_eq!(canonical_escapes("é%7eé%é"), "é~é%é");
    }
}
