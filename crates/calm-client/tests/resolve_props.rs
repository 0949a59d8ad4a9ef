//! Property tests of `BaseUrl::resolve`: whatever the request path, the result never names
//! another authority, never lands outside the base path, and nothing panics.
#![allow(missing_docs)]

use calm_client::BaseUrl;
use http::Uri;
use proptest::prelude::*;

const BASES: &[&str] = &[
    "https://api.example.com/v1/",
    "https://api.example.com/",
    "http://127.0.0.1:8080/a/b/",
    "http://[::1]:9000/v%2F1/",
];

/// Pieces that stress the resolver: dot segments in every disguise, encoded separators,
/// path parameters, authorities, query and fragment marks.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/",
        "//",
        ".",
        "..",
        "...",
        "%2e",
        "%2E",
        "%2e%2e",
        "%2E%2e",
        ".%2e",
        "%2e.",
        "%2f",
        "%2F",
        "%5c",
        "%5C",
        "\\",
        ";",
        "..;",
        "?",
        "#",
        "&",
        "=",
        "%",
        "%2",
        "%zz",
        "a",
        "v1",
        "v2",
        "users",
        "evil.example",
        "api.example.com",
        "127.0.0.1:8080",
        ":",
        "@",
        "user@",
        "http:",
        "https:",
        "//evil.example",
        "https://api.example.com",
        "http://127.0.0.1:8080",
        "http://[::1]:9000",
        "/v%2f1",
        "https://evil.example",
        "~",
        "-",
        "_",
        "é",
        " ",
        "*",
    ])
}

fn reference() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(piece(), 0..12).prop_map(|p| p.concat()),
        1 => any::<String>(),
        1 => "[ -~]{0,40}",
    ]
}

/// Decodes what some server might decode, then removes dot segments (RFC 3986 §5.2.4), with
/// `\` as a separator and `;` parameters stripped: the path a lenient server could end up
/// serving.
fn lenient_server_view(path: &str) -> String {
    let mut decoded = String::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = &path[i + 1..i + 3];
            match hex.to_ascii_lowercase().as_str() {
                "2e" => decoded.push('.'),
                "2f" | "5c" => decoded.push('/'),
                "3b" => decoded.push(';'),
                _ => decoded.push_str(&path[i..i + 3]),
            }
            i += 3;
        } else {
            let c = path[i..].chars().next().unwrap();
            decoded.push(if c == '\\' { '/' } else { c });
            i += c.len_utf8();
        }
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        let name = segment.split(';').next().unwrap_or("");
        match name {
            "." => {
                if index == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if index == last {
                    out.push("");
                }
            }
            _ => out.push(segment),
        }
    }
    format!("/{}", out.join("/"))
}

/// `path` with the hex digits of its percent-escapes uppercased.
fn upper_escapes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut escape = 0;
    for c in path.chars() {
        if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
        if c == '%' {
            escape = 2;
        }
    }
    out
}

fn assert_stays_inside(base: &BaseUrl, uri: &Uri, input: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(uri.scheme_str(), Some(base.scheme()), "input {:?}", input);
    prop_assert_eq!(
        uri.authority().map(|a| a.as_str()),
        Some(base.authority().as_str()),
        "input {:?}",
        input
    );
    let base_path = base.path();
    let bare_base = &base_path[..base_path.len() - 1];
    // NOTE: the base path's escapes are uppercase; the request's may be in either case.
    let path = &upper_escapes(uri.path());
    prop_assert!(
        path.starts_with(base_path) || path == bare_base,
        "input {:?} gave path {:?} outside {:?}",
        input,
        path,
        base_path
    );
    let seen = lenient_server_view(path);
    let seen_base = lenient_server_view(base_path);
    prop_assert!(
        seen.starts_with(&seen_base) || seen == seen_base[..seen_base.len() - 1],
        "input {:?} gave path {:?}, which a lenient server reads as {:?}",
        input,
        path,
        seen
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn resolve_never_leaves_the_base(base in prop::sample::select(BASES), input in reference()) {
        let base = BaseUrl::parse(base).unwrap();
        if let Ok(uri) = input.parse::<Uri>() {
            if let Ok(resolved) = base.resolve(&uri) {
                assert_stays_inside(&base, &resolved, &input)?;
            }
        }
        if let Ok(resolved) = base.resolve_str(&input) {
            assert_stays_inside(&base, &resolved, &input)?;
        }
    }

    #[test]
    fn plain_paths_always_resolve(
        base in prop::sample::select(BASES),
        segments in prop::collection::vec("[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,8}", 0..6),
        query in prop::option::of("[a-z0-9=&]{0,12}"),
    ) {
        // Segments never equal `.` or `..` here (the first character is not a dot).
        let base = BaseUrl::parse(base).unwrap();
        let mut input = format!("/{}", segments.join("/"));
        if let Some(query) = &query {
            input.push('?');
            input.push_str(query);
        }
        let uri: Uri = input.parse().unwrap();
        let resolved = base.resolve(&uri).unwrap();
        let expected_path = format!("{}{}", base.path(), segments.join("/"));
        prop_assert_eq!(resolved.path(), expected_path.as_str());
        prop_assert_eq!(resolved.query(), query.as_deref());
        assert_stays_inside(&base, &resolved, &input)?;
    }

    #[test]
    fn an_absolute_uri_already_on_the_normalized_origin_resolves_as_any_other(
        base in prop::sample::select(BASES),
        rest in reference(),
    ) {
        // The same URI with the base's authority as written (which `resolve` may hand back
        // as it is) and uppercased (which it must rebuild): one result, byte for byte.
        let base = BaseUrl::parse(base).unwrap();
        let written = |uri: &Uri| {
            format!("{:?} {:?}", uri.authority().map(|a| a.as_str()), uri.path_and_query().map(|p| p.as_str()))
        };
        let exact = format!("{}{rest}", base.origin());
        let upper = format!("{}://{}{rest}", base.scheme(), base.authority().as_str().to_ascii_uppercase());
        if let (Ok(exact), Ok(upper)) = (exact.parse::<Uri>(), upper.parse::<Uri>()) {
            let exact = base.resolve(&exact);
            let upper = base.resolve(&upper);
            prop_assert_eq!(
                exact.as_ref().map(written).map_err(|e| e.kind()),
                upper.as_ref().map(written).map_err(|e| e.kind()),
                "rest {:?}",
                rest
            );
        }
    }

    #[test]
    fn parse_never_panics(input in any::<String>()) {
        if let Ok(base) = BaseUrl::parse(&input) {
            // A parsed base URL is stable under parsing its normalized form again.
            let again = BaseUrl::parse(base.as_str()).unwrap();
            prop_assert_eq!(again, base);
        }
    }

    #[test]
    fn parse_normalizes_idempotently(
        scheme in prop::sample::select(vec!["http", "HTTP", "https", "HttpS"]),
        // NOTE: the last label starts with a letter: a host that ends in a number is an IPv4
        // address (WHATWG URL rules), tested in `base_url.rs`.
        host in "([a-zA-Z0-9-]{1,10}\\.){0,2}[a-zA-Z][a-zA-Z0-9-]{0,9}",
        port in prop::option::of(1u16..),
        path in "(/[a-zA-Z0-9_~%-]{0,6}){0,4}",
    ) {
        let input = match port {
            Some(port) => format!("{scheme}://{host}:{port}{path}"),
            None => format!("{scheme}://{host}{path}"),
        };
        // NOTE: an `xn--` label must be valid punycode; that is tested in `base_url.rs`.
        prop_assume!(!host.to_ascii_lowercase().contains("xn--"));
        match BaseUrl::parse(&input) {
            Ok(base) => {
                prop_assert!(base.as_str().ends_with('/'));
                prop_assert_eq!(base.host(), host.to_ascii_lowercase());
                prop_assert_eq!(BaseUrl::parse(base.as_str()).unwrap(), base);
            }
            // Only a stray `%` (not followed by two hex digits) may fail here.
            Err(err) => prop_assert!(path.contains('%'), "{}: {}", input, err),
        }
    }

    /// Issue 15: re-encoding unreserved characters, changing the hex case of escapes, the
    /// case of the scheme and host, or spelling the default port never changes the key.
    #[test]
    fn equivalent_spellings_give_one_key(
        https in any::<bool>(),
        labels in prop::collection::vec("[a-z][a-z0-9-]{0,8}", 1..4),
        port in prop::option::of(prop::sample::select(vec![8080u16, 1, 65535])),
        segments in prop::collection::vec(
            prop::collection::vec(
                prop::sample::select(vec![
                    "a", "Z", "0", "9", "-", ".", "_", "~", "%2F", "%3a", "%C3%A9", "%20",
                    "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", ":", "%40",
                ]),
                1..6,
            ),
            0..4,
        ),
        respell in prop::collection::vec(any::<(bool, bool, bool)>(), 64),
    ) {
        let scheme = if https { "https" } else { "http" };
        let host = labels.join(".");
        prop_assume!(!host.contains("xn--"));
        let path: String = segments.iter().map(|s| format!("/{}", s.concat())).collect();
        prop_assume!(!path.split('/').any(|s| s.trim_matches('.').is_empty() && !s.is_empty()));
        let port_part = port.map(|p| format!(":{p}")).unwrap_or_default();
        let input = format!("{scheme}://{host}{port_part}{path}");
        let base = match BaseUrl::parse(&input) {
            Ok(base) => base,
            // Only dot segments (`.`, `..`, hidden with a `;`) may be refused here.
            Err(err) => {
                prop_assert_eq!(err.kind(), calm_client::error::InvalidBaseUrlKind::DotSegment);
                return Ok(());
            }
        };

        // Another spelling of the same base URL.
        let mut flags = respell.iter().cycle();
        let mut next = || *flags.next().unwrap();
        let scheme2: String = scheme
            .chars()
            .map(|c| if next().0 { c.to_ascii_uppercase() } else { c })
            .collect();
        let host2: String = host
            .chars()
            .map(|c| if next().0 { c.to_ascii_uppercase() } else { c })
            .collect();
        let default = if https { 443 } else { 80 };
        let port2 = match port {
            Some(p) if next().1 => format!(":0{p}"),
            Some(p) => format!(":{p}"),
            None if next().1 => format!(":{default}"),
            None if next().2 => format!(":00{default}"),
            None => String::new(),
        };
        let mut path2 = String::new();
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let (upper, encode, _) = next();
            if b == b'%' {
                // An escape: its hex digits in either case.
                let hex = &path[i + 1..i + 3];
                path2.push('%');
                path2.push_str(&if upper { hex.to_ascii_uppercase() } else { hex.to_ascii_lowercase() });
                i += 3;
                continue;
            }
            if encode && (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
                let escaped = format!("%{b:02X}");
                path2.push_str(&if upper { escaped } else { escaped.to_ascii_lowercase() });
            } else {
                path2.push(char::from(b));
            }
            i += 1;
        }
        let trailing = if next().2 { "/" } else { "" };
        let respelled = format!("{scheme2}://{host2}{port2}{path2}{trailing}");
        let again = BaseUrl::parse(&respelled);
        prop_assert!(again.is_ok(), "{} (from {}): {:?}", respelled, input, again);
        let again = again.unwrap();
        prop_assert_eq!(again.as_str(), base.as_str(), "{} vs {}", respelled, input);
        prop_assert_eq!(&again, &base);
        // And the canonical form is a fixed point.
        prop_assert_eq!(BaseUrl::parse(base.as_str()).unwrap(), base.clone());
        prop_assert!(!base.path().contains("%7E") && !base.path().contains("%2e"));
    }
}
