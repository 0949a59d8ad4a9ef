//! [`BaseUrl`]: where the requests of one API session go.

use crate::error::{InvalidBaseUrl, InvalidBaseUrlKind as K, ResolveError, ResolveErrorKind};
use bytes::Bytes;
use http::uri::{Authority, Parts, PathAndQuery, Scheme};
use http::Uri;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::sync::Arc;

/// The normalized base URL of an API: an absolute `http` or `https` URL whose path ends in
/// `/`, under which every request of a session goes.
///
/// # Normalization
///
/// - the scheme and host are lowercased, a default port (`:80` for `http`, `:443` for
///   `https`) is dropped, an IPv6 literal is written in its canonical form (`[::1]`);
/// - the path ends in `/` (an empty path becomes `/`); percent-escapes are uppercased
///   (`%7e` → `%7E`); empty segments (`//`) are kept.
///
/// So equal base URLs are equal keys:
///
/// ```
/// use calm_client::BaseUrl;
///
/// let a = BaseUrl::parse("HTTPS://API.example.com:443/v1").unwrap();
/// let b = BaseUrl::parse("https://api.example.com/v1/").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "https://api.example.com/v1/");
/// assert_eq!(a.origin(), "https://api.example.com");
/// assert_eq!(a.path(), "/v1/");
/// ```
///
/// # Refused
///
/// A scheme other than `http`/`https`, a missing host, a port that is not 1–65535, userinfo
/// (`user:pass@` — credentials belong in headers), a query, a fragment, whitespace, characters
/// that must be percent-encoded, and dot segments (`.`/`..`, also percent-encoded) in the
/// path. Each refusal is an [`InvalidBaseUrl`] whose [`kind`](InvalidBaseUrl::kind) and
/// message say which part is wrong and why.
///
/// # Clone
///
/// Cloning is a reference-count increment: clones share one allocation.
#[derive(Clone)]
pub struct BaseUrl {
    inner: Arc<Inner>,
}

struct Inner {
    /// `scheme://authority/path/`, the normalized form.
    serialized: Box<str>,
    scheme: Scheme,
    authority: Authority,
    /// `serialized[..origin_len]` is `scheme://authority`.
    origin_len: usize,
    /// `serialized[host_start..host_end]` is the host.
    host_start: usize,
    host_end: usize,
    /// The explicit port; `None` when it is the scheme's default.
    port: Option<u16>,
    default_port: u16,
}

impl BaseUrl {
    /// Parses and normalizes a base URL.
    ///
    /// # Errors
    ///
    /// An [`InvalidBaseUrl`] naming the part that is wrong; see the
    /// [type docs](BaseUrl#refused) for the rules.
    ///
    /// ```
    /// use calm_client::{BaseUrl, error::InvalidBaseUrlKind};
    ///
    /// let base = BaseUrl::parse("http://[0:0::1]:8080").unwrap();
    /// assert_eq!(base.as_str(), "http://[::1]:8080/");
    ///
    /// let err = BaseUrl::parse("https://api.example.com/v1?page=2").unwrap_err();
    /// assert_eq!(err.kind(), InvalidBaseUrlKind::Query);
    /// ```
    pub fn parse(input: &str) -> Result<BaseUrl, InvalidBaseUrl> {
        parse(input).map(|inner| BaseUrl {
            inner: Arc::new(inner),
        })
    }

    /// The normalized URL, always ending in `/`.
    pub fn as_str(&self) -> &str {
        &self.inner.serialized
    }

    /// `scheme://authority`, without a trailing `/` (for example `https://api.example.com` or
    /// `http://127.0.0.1:8080`).
    pub fn origin(&self) -> &str {
        &self.inner.serialized[..self.inner.origin_len]
    }

    /// The base path, starting and ending with `/` (for example `/v1/`, or `/`).
    pub fn path(&self) -> &str {
        &self.inner.serialized[self.inner.origin_len..]
    }

    /// The scheme: `"http"` or `"https"`.
    pub fn scheme(&self) -> &str {
        self.inner.scheme.as_str()
    }

    /// The host, lowercased; an IPv6 address keeps its brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.inner.serialized[self.inner.host_start..self.inner.host_end]
    }

    /// The port if it is not the scheme's default (`None` for `https://h:443/`).
    pub fn port(&self) -> Option<u16> {
        self.inner.port
    }

    /// The port requests connect to: the explicit one or the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.inner.port.unwrap_or(self.inner.default_port)
    }

    /// The authority (`host` or `host:port`) as an [`http::uri::Authority`].
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// The base URL as an [`http::Uri`].
    pub fn to_uri(&self) -> Uri {
        // NOTE: the base path passed validation at parse time, so only resolve's own
        // checks apply and the empty relative path cannot be refused.
        self.build("", self.path(), None)
            .unwrap_or_else(|_| Uri::from_static("/"))
    }

    /// Resolves a request URI against this base URL.
    ///
    /// - A path (`/users?page=2`, or a bare word such as `users`, which [`http::Uri`] reads
    ///   as an authority) is appended to the base path, httpx-style: leading slashes are
    ///   dropped, so base `https://h/v1/` with `/users?page=2` gives
    ///   `https://h/v1/users?page=2`, and `//evil.example/x` gives `https://h/v1/evil.example/x`
    ///   — a path under the base, never another host. The query is kept as it is.
    /// - An absolute URI on the base origin (same scheme, host ignoring case, and port,
    ///   default ports included) passes when its path is under the base path (or is the base
    ///   path without its trailing `/`), percent-escapes matching in either case; its path is
    ///   kept exactly and its authority is replaced by the normalized one.
    ///
    /// # Dot segments
    ///
    /// A path segment that is `.` or `..` — plain or percent-encoded (`%2e`, `%2E`, in any
    /// mix), or hidden behind an encoded separator (`..%2f`, `..%5c`) or a `;` parameter
    /// (`..;x`) — is refused with [`ResolveErrorKind::DotSegment`], even when it would stay
    /// under the base path (`/v1/a/../b`). Refusing, rather than normalizing, keeps the rule
    /// simple and leaves no room for a server or proxy to normalize differently than calm
    /// did: whether `/v1/../v2` means `/v2` or `/v1/v2` is exactly the ambiguity an attacker
    /// would use.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] with kind [`ForeignOrigin`](ResolveErrorKind::ForeignOrigin),
    /// [`OutsideBasePath`](ResolveErrorKind::OutsideBasePath),
    /// [`DotSegment`](ResolveErrorKind::DotSegment) or
    /// [`UserInfo`](ResolveErrorKind::UserInfo).
    ///
    /// ```
    /// use calm_client::{BaseUrl, error::ResolveErrorKind};
    /// use http::Uri;
    ///
    /// let base = BaseUrl::parse("https://api.example.com/v1").unwrap();
    /// let uri = base.resolve(&Uri::from_static("/users?page=2")).unwrap();
    /// assert_eq!(uri, "https://api.example.com/v1/users?page=2");
    ///
    /// let uri = base.resolve(&Uri::from_static("//evil.example/x")).unwrap();
    /// assert_eq!(uri, "https://api.example.com/v1/evil.example/x");
    ///
    /// let err = base.resolve(&Uri::from_static("/../admin")).unwrap_err();
    /// assert_eq!(err.kind(), ResolveErrorKind::DotSegment);
    /// ```
    pub fn resolve(&self, uri: &Uri) -> Result<Uri, ResolveError> {
        match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                // NOTE: `Uri::path` reads a missing path as `/`, so `https://h?x=1` looks like
                // `https://h/?x=1`; only a path-and-query that starts with `/` as written may be
                // handed back as it is.
                let rooted = uri
                    .path_and_query()
                    .is_some_and(|pq| pq.as_str().starts_with('/'));
                let resolved =
                    self.resolve_absolute(scheme, authority, uri.path(), uri.query(), rooted)?;
                Ok(resolved.unwrap_or_else(|| uri.clone()))
            }
            (None, Some(authority)) => {
                // NOTE: http::Uri parses a lone word (`users`, `a:b`) as an authority. As a
                // request target with no scheme it can only mean a path under the base.
                let path = uri.path();
                if path.is_empty() {
                    self.resolve_relative(authority.as_str(), uri.query())
                } else {
                    self.resolve_relative(&format!("{authority}{path}"), uri.query())
                }
            }
            (None, None) => self.resolve_relative(uri.path(), uri.query()),
            (Some(_), None) => Err(ResolveError::new(
                ResolveErrorKind::InvalidReference,
                "the URI has a scheme but no authority",
            )),
        }
    }

    /// Resolves a URI reference given as a string, with the rules of
    /// [`resolve`](BaseUrl::resolve).
    ///
    /// Unlike [`http::Uri`], a string can hold every relative reference:
    /// `users/42?page=2` works here. A reference is absolute when it starts with
    /// `scheme://`; anything else is a path (and query) under the base. A fragment (`#…`) is
    /// dropped, as it is never sent.
    ///
    /// # Errors
    ///
    /// As [`resolve`](BaseUrl::resolve), plus
    /// [`InvalidReference`](ResolveErrorKind::InvalidReference) when the string contains
    /// characters that cannot appear in a URI.
    ///
    /// ```
    /// use calm_client::BaseUrl;
    ///
    /// let base = BaseUrl::parse("http://127.0.0.1:8080/api").unwrap();
    /// let uri = base.resolve_str("users/42?page=2#top").unwrap();
    /// assert_eq!(uri, "http://127.0.0.1:8080/api/users/42?page=2");
    /// ```
    pub fn resolve_str(&self, reference: &str) -> Result<Uri, ResolveError> {
        let reference = match reference.find('#') {
            Some(i) => &reference[..i],
            None => reference,
        };
        if scheme_end(reference).is_some() {
            let uri = Uri::try_from(reference).map_err(|e| invalid_reference(reference, &e))?;
            return self.resolve(&uri);
        }
        let (path, query) = match reference.find('?') {
            Some(i) => (&reference[..i], Some(&reference[i + 1..])),
            None => (reference, None),
        };
        self.resolve_relative(path, query)
            .map_err(|e| match e.kind() {
                ResolveErrorKind::InvalidReference => invalid_reference(reference, &e.message()),
                _ => e,
            })
    }

    fn resolve_relative(&self, path: &str, query: Option<&str>) -> Result<Uri, ResolveError> {
        let rel = path.trim_start_matches('/');
        self.check_dot_segments(rel)?;
        self.build(self.path(), rel, query)
    }

    fn resolve_absolute(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        path: &str,
        query: Option<&str>,
        rooted: bool,
    ) -> Result<Option<Uri>, ResolveError> {
        if authority.as_str().contains('@') {
            return Err(ResolveError::new(
                ResolveErrorKind::UserInfo,
                "the absolute URI carries userinfo (`…@`); credentials belong in headers",
            ));
        }
        if !self.same_origin(scheme, authority) {
            return Err(ResolveError::new(
                ResolveErrorKind::ForeignOrigin,
                format!(
                    "`{scheme}://{authority}` is not the origin of the base URL `{}`; a request \
                     cannot leave its base origin",
                    self.as_str()
                ),
            ));
        }
        let base_path = self.path();
        let bare = &base_path[..base_path.len() - 1];
        let under = starts_with_path(path, base_path)
            || (path.len() == bare.len() && starts_with_path(path, bare));
        if !under {
            return Err(ResolveError::new(
                ResolveErrorKind::OutsideBasePath,
                format!(
                    "path `{path}` is not under the base path `{base_path}` of `{}`",
                    self.as_str()
                ),
            ));
        }
        self.check_dot_segments(path)?;
        // NOTE: `None` means "already in normal form, use it as it is": a URI this base URL
        // resolved before (a request prepared twice) costs no new allocation.
        if rooted
            && scheme.as_str() == self.scheme()
            && authority.as_str() == self.authority().as_str()
        {
            return Ok(None);
        }
        let path = if path.is_empty() { "/" } else { path };
        self.build("", path, query).map(Some)
    }

    fn same_origin(&self, scheme: &Scheme, authority: &Authority) -> bool {
        let default_port = match scheme.as_str() {
            s if s.eq_ignore_ascii_case("http") => 80,
            s if s.eq_ignore_ascii_case("https") => 443,
            _ => return false,
        };
        if !scheme.as_str().eq_ignore_ascii_case(self.scheme()) {
            return false;
        }
        if authority.port_u16().unwrap_or(default_port) != self.port_or_default() {
            return false;
        }
        let host = authority.host();
        let base_host = self.host();
        if host.eq_ignore_ascii_case(base_host) {
            return true;
        }
        // NOTE: IPv6 literals have several spellings (`[::1]`, `[0:0::1]`).
        match (parse_ipv6_literal(host), parse_ipv6_literal(base_host)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    fn check_dot_segments(&self, path: &str) -> Result<(), ResolveError> {
        // NOTE: fast path — without `.`, `%` or `\` no segment can be or hide a dot segment.
        if !path.bytes().any(|b| matches!(b, b'.' | b'%' | b'\\')) {
            return Ok(());
        }
        match path.split('/').find(|segment| is_dot_segment(segment)) {
            None => Ok(()),
            Some(segment) => Err(ResolveError::new(
                ResolveErrorKind::DotSegment,
                format!(
                    "path segment `{segment}` is a dot segment; dot segments are refused so \
                     that no request can climb out of the base path `{}`",
                    self.path()
                ),
            )),
        }
    }

    /// Builds `scheme://authority{prefix}{path}[?query]` with one allocation for the path.
    fn build(&self, prefix: &str, path: &str, query: Option<&str>) -> Result<Uri, ResolveError> {
        let len = prefix.len() + path.len() + query.map_or(0, |q| q.len() + 1);
        let mut buf = String::with_capacity(len);
        buf.push_str(prefix);
        buf.push_str(path);
        if let Some(query) = query {
            buf.push('?');
            buf.push_str(query);
        }
        let path_and_query = PathAndQuery::from_maybe_shared(Bytes::from(buf))
            .map_err(|e| ResolveError::new(ResolveErrorKind::InvalidReference, e.to_string()))?;
        let mut parts = Parts::default();
        parts.scheme = Some(self.inner.scheme.clone());
        parts.authority = Some(self.inner.authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts)
            .map_err(|e| ResolveError::new(ResolveErrorKind::InvalidReference, e.to_string()))
    }
}

fn invalid_reference(reference: &str, cause: &dyn fmt::Display) -> ResolveError {
    ResolveError::new(
        ResolveErrorKind::InvalidReference,
        format!(
            "{:?} is not a valid URI reference: {cause}",
            crate::error::redact_url(reference)
        ),
    )
}

/// Whether a path segment is `.` or `..`, or hides one: `%XX` escapes are decoded once,
/// `/`, `\` (plain or decoded) split the segment into components, and a `;` starts path
/// parameters that some servers strip (`..;x`).
pub(crate) fn is_dot_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut dots = 0usize;
    let mut other = false;
    let mut in_params = false;
    let mut i = 0;
    loop {
        let byte = match bytes.get(i) {
            None => None,
            Some(&b'%') => match (
                bytes.get(i + 1).and_then(|&b| hex_value(b)),
                bytes.get(i + 2).and_then(|&b| hex_value(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    i += 2;
                    Some(hi << 4 | lo)
                }
                _ => Some(b'%'),
            },
            Some(&b) => Some(b),
        };
        i += 1;
        match byte {
            None | Some(b'/' | b'\\') => {
                if !other && (dots == 1 || dots == 2) {
                    return true;
                }
                if byte.is_none() {
                    return false;
                }
                dots = 0;
                other = false;
                in_params = false;
            }
            Some(_) if in_params => {}
            Some(b';') => in_params = true,
            Some(b'.') => dots += 1,
            Some(_) => other = true,
        }
    }
}

/// Whether `path` starts with `base` (a normalized path), the hex digits of percent-escapes
/// compared in either case: `/a%7e/x` is under `/a%7E/`.
fn starts_with_path(path: &str, base: &str) -> bool {
    if path.starts_with(base) {
        return true;
    }
    let Some(prefix) = path
        .as_bytes()
        .get(..base.len())
        .filter(|_| base.contains('%'))
    else {
        return false;
    };
    let mut escape = 0;
    base.bytes().zip(prefix).all(|(b, &p)| {
        let same = if escape > 0 {
            escape -= 1;
            b.eq_ignore_ascii_case(&p)
        } else {
            b == p
        };
        if b == b'%' {
            escape = 2;
        }
        same
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_ipv6_literal(host: &str) -> Option<Ipv6Addr> {
    host.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The index of `://` when `s` starts with `scheme://`.
fn scheme_end(s: &str) -> Option<usize> {
    let end = s.find("://")?;
    let scheme = &s[..end];
    let mut chars = scheme.bytes();
    let first_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then_some(end)
}

fn parse(input: &str) -> Result<Inner, InvalidBaseUrl> {
    let fail = |kind, message: String| Err(InvalidBaseUrl::new(kind, input, message));

    if input.is_empty() {
        return fail(K::Empty, "the string is empty".into());
    }
    if let Some((at, c)) = input
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        let hint = if at + c.len_utf8() == input.len() && c.is_whitespace() {
            " (a trailing newline read from a file?)"
        } else {
            ""
        };
        return fail(
            K::InvalidCharacter,
            format!("{c:?} at byte {at} is not allowed in a URL: whitespace and control characters must be percent-encoded{hint}"),
        );
    }

    // Scheme.
    let Some(scheme_len) = scheme_end(input) else {
        return fail(
            K::MissingScheme,
            "no scheme: a base URL starts with `http://` or `https://`".into(),
        );
    };
    let scheme_str = &input[..scheme_len];
    let (scheme, default_port) = if scheme_str.eq_ignore_ascii_case("http") {
        (Scheme::HTTP, 80)
    } else if scheme_str.eq_ignore_ascii_case("https") {
        (Scheme::HTTPS, 443)
    } else {
        return fail(
            K::UnsupportedScheme,
            format!("scheme `{scheme_str}` is not supported; use `http` or `https`"),
        );
    };

    // Authority.
    let rest = &input[scheme_len + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    if authority.contains('@') {
        return fail(
            K::UserInfo,
            "a base URL cannot carry userinfo (`user:password@`); credentials belong in headers \
             (see SharedClientBuilder::basic_auth and bearer_auth)"
                .into(),
        );
    }
    if authority.is_empty() {
        return fail(K::MissingHost, format!("no host after `{scheme_str}://`"));
    }
    let (host, port_str) = if let Some(literal) = authority.strip_prefix('[') {
        let Some(close) = literal.find(']') else {
            return fail(
                K::InvalidHost,
                format!("the IPv6 literal `{authority}` has no closing `]`"),
            );
        };
        let addr = match literal[..close].parse::<Ipv6Addr>() {
            Ok(addr) => addr,
            Err(_) => {
                return fail(
                    K::InvalidHost,
                    format!(
                        "`[{}]` is not an IPv6 address (zone identifiers are not supported)",
                        &literal[..close]
                    ),
                )
            }
        };
        let after = &literal[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => {
                return fail(
                    K::InvalidHost,
                    format!("unexpected `{after}` after the IPv6 literal; expected `:port`"),
                )
            }
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return fail(
                K::InvalidHost,
                format!("`{authority}` has several `:`; write an IPv6 address in brackets, like `[::1]`"),
            );
        }
        if host.is_empty() {
            return fail(
                K::MissingHost,
                format!("no host before `:` in `{authority}`"),
            );
        }
        if let Some(c) = host
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
        {
            let why = if c.is_ascii() {
                "which is not allowed in a host name"
            } else {
                "a non-ASCII character; write an internationalized host in its punycode \
                 (`xn--…`) form"
            };
            return fail(
                K::InvalidHost,
                format!("host `{host}` contains {c:?}, {why}"),
            );
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port_str {
        // NOTE: an empty port means the default one (RFC 3986 §6.2.3, WHATWG URL).
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) => return fail(K::InvalidPort, "port 0 cannot be connected to".into()),
            Ok(port) if p.bytes().all(|b| b.is_ascii_digit()) => {
                (port != default_port).then_some(port)
            }
            _ => {
                return fail(
                    K::InvalidPort,
                    format!("port `{p}` is not a number from 1 to 65535"),
                )
            }
        },
    };

    // Query, fragment, path.
    let tail = &rest[auth_end..];
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    match tail.as_bytes().get(path_end) {
        Some(b'?') => {
            return fail(
                K::Query,
                "a base URL cannot have a query (`?…`); put query parameters on each request"
                    .into(),
            )
        }
        Some(_) => {
            return fail(
                K::Fragment,
                "a base URL cannot have a fragment (`#…`); fragments are never sent to a server"
                    .into(),
            )
        }
        None => {}
    }
    let path = normalize_path(&tail[..path_end])
        .map_err(|(kind, message)| InvalidBaseUrl::new(kind, input, message))?;

    let mut serialized = String::with_capacity(scheme_len + 3 + host.len() + 6 + path.len());
    serialized.push_str(scheme.as_str());
    serialized.push_str("://");
    let host_start = serialized.len();
    serialized.push_str(&host);
    let host_end = serialized.len();
    if let Some(port) = port {
        serialized.push(':');
        serialized.push_str(&port.to_string());
    }
    let origin_len = serialized.len();
    serialized.push_str(&path);

    let authority = Authority::from_maybe_shared(Bytes::copy_from_slice(
        &serialized.as_bytes()[host_start..origin_len],
    ))
    .map_err(|e| InvalidBaseUrl::new(K::InvalidHost, input, format!("invalid authority: {e}")))?;

    Ok(Inner {
        serialized: serialized.into_boxed_str(),
        scheme,
        authority,
        origin_len,
        host_start,
        host_end,
        port,
        default_port,
    })
}

/// Checks a base path and returns it with uppercased percent-escapes and a trailing `/`.
fn normalize_path(path: &str) -> Result<String, (K, String)> {
    let mut out = String::with_capacity(path.len() + 2);
    if !path.starts_with('/') {
        out.push('/');
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&hi), Some(&lo)) if hex_value(hi).is_some() && hex_value(lo).is_some() => {
                    out.push('%');
                    out.push(hi.to_ascii_uppercase() as char);
                    out.push(lo.to_ascii_uppercase() as char);
                    i += 3;
                    continue;
                }
                _ => {
                    let shown: String = path[i..].chars().take(3).collect();
                    return Err((
                        K::InvalidPath,
                        format!(
                            "malformed percent-escape `{shown}` at byte {i} of the path; `%` must \
                             be followed by two hex digits"
                        ),
                    ));
                }
            }
        }
        let allowed = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if !allowed {
            // `i` is on a char boundary: every byte before it was ASCII.
            let c = path[i..].chars().next().unwrap_or('\u{fffd}');
            return Err((
                K::InvalidPath,
                format!(
                    "the path contains {c:?} at byte {i}, which must be percent-encoded in a URL"
                ),
            ));
        }
        out.push(b as char);
        i += 1;
    }
    if let Some(segment) = out.split('/').find(|s| is_dot_segment(s)) {
        return Err((
            K::DotSegment,
            format!("the path segment `{segment}` is a dot segment; write the path it stands for"),
        ));
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

impl PartialEq for BaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BaseUrl {}

impl Hash for BaseUrl {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for BaseUrl {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BaseUrl {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BaseUrl").field(&self.as_str()).finish()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for BaseUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for BaseUrl {
    type Err = InvalidBaseUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BaseUrl::parse(s)
    }
}

impl TryFrom<&str> for BaseUrl {
    type Error = InvalidBaseUrl;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        BaseUrl::parse(s)
    }
}

impl TryFrom<String> for BaseUrl {
    type Error = InvalidBaseUrl;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        BaseUrl::parse(&s)
    }
}

impl TryFrom<&String> for BaseUrl {
    type Error = InvalidBaseUrl;

    fn try_from(s: &String) -> Result<Self, Self::Error> {
        BaseUrl::parse(s)
    }
}

/// Anything that names a base URL: `&str`, `String`, `&String`, [`BaseUrl`], `&BaseUrl`.
///
/// Constructors such as [`SharedClientLayer::new`](crate::SharedClientLayer::new) take
/// `impl IntoBaseUrl`, so an already parsed `BaseUrl` is reused (a clone is a reference-count
/// increment) and a string is parsed.
///
/// ```
/// use calm_client::{BaseUrl, IntoBaseUrl};
///
/// let base = "https://api.example.com/v1".into_base_url().unwrap();
/// assert_eq!(base.clone().into_base_url().unwrap(), base);
/// ```
pub trait IntoBaseUrl {
    /// Converts (parsing if needed) into a [`BaseUrl`].
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`] when a string is not an acceptable base URL.
    fn into_base_url(self) -> Result<BaseUrl, InvalidBaseUrl>;
}

impl IntoBaseUrl for BaseUrl {
    fn into_base_url(self) -> Result<BaseUrl, InvalidBaseUrl> {
        Ok(self)
    }
}

impl IntoBaseUrl for &BaseUrl {
    fn into_base_url(self) -> Result<BaseUrl, InvalidBaseUrl> {
        Ok(self.clone())
    }
}

impl IntoBaseUrl for &str {
    fn into_base_url(self) -> Result<BaseUrl, InvalidBaseUrl> {
        BaseUrl::parse(self)
    }
}

impl IntoBaseUrl for String {
    fn into_base_url(self) -> Result<BaseUrl, InvalidBaseUrl> {
        BaseUrl::parse(&self)
    }
}

impl IntoBaseUrl for &String {
    fn into_base_url(self) -> Result<BaseUrl, InvalidBaseUrl> {
        BaseUrl::parse(self)
    }
}

#[cfg(test)]
mod tests {
    use super::is_dot_segment;

    #[test]
    fn dot_segments() {
        for dotty in [
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2E",
            ".%2e",
            "%2e.",
            "..;x",
            ".;",
            "..%2f",
            "%2e%2e%2F",
            "a%2f..",
            "..\\x",
            "x%5c..%5cy",
            "%2e%2e%5C",
            "..%2fadmin",
        ] {
            assert!(is_dot_segment(dotty), "{dotty} should be a dot segment");
        }
        for plain in [
            "",
            "...",
            "a.b",
            ".well-known",
            "v1.2",
            "%2e%2e%2e",
            "a..",
            "..a",
            "%2x",
            "%",
            "%2",
            "x;..",
            "group%2Fproject",
            "%252e%252e",
        ] {
            assert!(
                !is_dot_segment(plain),
                "{plain} should not be a dot segment"
            );
        }
    }
}
