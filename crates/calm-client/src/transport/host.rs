//! The `Host` header of a plain-`http` request, added before hyper-util's client sees it.
//!
//! hyper-util adds `Host` to every HTTP/1 request that lacks one, from the URI: the host and,
//! unless it is the scheme's default, the port. It builds that value with `format!` and
//! parses the port twice, on every request — about 2,300 instructions. For the common
//! spellings of an authority the value is the authority's text itself (or its host, for an
//! explicit `:80`), which takes about 600; any other spelling is left to hyper-util, whose
//! value stays the reference.

use http::header::{HeaderValue, HOST};
use http::uri::{Authority, Scheme};
use http::Request;

/// Adds to a plain-`http` request without a `Host` header the one hyper-util would add.
///
/// Only for `http`: such a request always goes over HTTP/1 (the transport offers HTTP/2 only
/// through TLS's ALPN), where hyper-util adds `Host`; an `https` request may go over HTTP/2,
/// where it adds none, so it is left alone.
pub(crate) fn add_host<B>(req: &mut Request<B>) {
    if req.uri().scheme() != Some(&Scheme::HTTP) || req.headers().contains_key(HOST) {
        return;
    }
    let Some(value) = req.uri().authority().and_then(host_value) else {
        return;
    };
    req.headers_mut().insert(HOST, value);
}

/// The `Host` value of an `http` request to `authority`, when the authority's text holds it
/// as hyper-util would write it: no userinfo, and after the host nothing, or a port written
/// as its number (digits, no leading zero). `None` otherwise, for hyper-util to work out.
fn host_value(authority: &Authority) -> Option<HeaderValue> {
    let text = authority.as_str();
    if text.contains('@') {
        return None;
    }
    // NOTE: the host as `Authority::host` reads it: an IPv6 literal up to its `]`, any other
    // host up to the first `:`.
    let host_end = if text.starts_with('[') {
        text.find(']')? + 1
    } else {
        text.find(':').unwrap_or(text.len())
    };
    let (host, rest) = text.split_at(host_end);
    let value = match rest {
        "" | ":80" => host,
        _ if rest.strip_prefix(':').is_some_and(is_written_as_its_number) => text,
        _ => return None,
    };
    HeaderValue::from_str(value).ok()
}

/// Whether `digits` is a port as hyper-util writes it back: a number up to 65535 in digits
/// only, no leading zero.
fn is_written_as_its_number(digits: &str) -> bool {
    !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// hyper-util's value: the URI's host, then `:` and the port unless the port is `80`.
    fn reference(authority: &Authority) -> String {
        match authority.port_u16() {
            Some(80) | None => authority.host().to_owned(),
            Some(port) => format!("{}:{port}", authority.host()),
        }
    }

    fn host_of(uri: &str) -> Option<String> {
        let mut req = Request::get(uri).body(()).unwrap();
        add_host(&mut req);
        req.headers()
            .get(HOST)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn common_authorities_get_hyper_utils_value() {
        for (uri, host) in [
            ("http://api.test/v1", "api.test"),
            ("http://api.test:80/v1", "api.test"),
            ("http://api.test:8080/v1", "api.test:8080"),
            ("http://127.0.0.1:41234/", "127.0.0.1:41234"),
            ("http://[::1]/", "[::1]"),
            ("http://[::1]:80/", "[::1]"),
            ("http://[::1]:8443/", "[::1]:8443"),
            ("http://API.Test:443/", "API.Test:443"),
        ] {
            assert_eq!(host_of(uri).as_deref(), Some(host), "{uri}");
        }
    }

    #[test]
    fn unusual_spellings_are_left_to_hyper_util() {
        for uri in [
            "http://user:pw@api.test/",
            "http://api.test:080/",
            "http://api.test:/",
            "http://api.test:0/",
            "http://api.test:99999/",
            "http://api.test:+80/",
            "http://api.test:+8080/",
            "http://[::1]x/",
            "http://[::1]x:8080/",
            "http://a[::1]/",
        ] {
            assert_eq!(host_of(uri), None, "{uri}");
        }
    }

    #[test]
    fn https_and_relative_requests_and_a_callers_host_are_left_alone() {
        assert_eq!(host_of("https://api.test/"), None);
        assert_eq!(host_of("/relative"), None);
        let mut req = Request::get("http://api.test/")
            .header(HOST, "other.test")
            .body(())
            .unwrap();
        add_host(&mut req);
        assert_eq!(req.headers().get_all(HOST).iter().count(), 1);
        assert_eq!(req.headers()[HOST], "other.test");
    }

    proptest! {
        /// Whatever the spelling, a value given is hyper-util's.
        #[test]
        fn a_value_given_is_hyper_utils(
            text in prop_oneof![
                // Any characters an authority may hold, ...
                "[a-zA-Z0-9.:@\\[\\]+!$&'()*,;=_~%-]{1,20}",
                // ... and the common shapes, so many cases get a value.
                "[a-z0-9.-]{1,10}(:[0-9]{0,6})?",
                "\\[[0-9a-f:]{2,10}\\](:[0-9+]{0,6})?",
            ],
        ) {
            if let Ok(authority) = text.parse::<Authority>() {
                if let Some(value) = host_value(&authority) {
                    prop_assert_eq!(value.to_str().unwrap(), reference(&authority));
                }
            }
        }
    }
}
