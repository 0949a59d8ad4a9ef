//! [`BaseUrl`]: where the requests of one API session go.

pub(crate) mod normalize;

use self::normalize::{canonical_escapes, escape_at, push_canonical_escape, HostError};
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
/// Every spelling of one base URL gives one canonical form, which is what
/// [`as_str`](BaseUrl::as_str), `Display`, equality and hashing use:
///
/// - the scheme is lowercased;
/// - the host is lowercased; an internationalized name is mapped to punycode by UTS #46 (the
///   IDNA processing of the WHATWG URL Standard: `bücher.example` → `xn--bcher-kva.example`),
///   and a name UTS #46 refuses is refused;
/// - a host that ends in a number is an IPv4 address, read as the WHATWG URL Standard does (1
///   to 4 parts, each decimal, octal with a leading `0` or hexadecimal with `0x`, the last part
///   filling the bytes left) and written in dotted-decimal form: `127.1` and `0x7f.0.0.1` are
///   `127.0.0.1`; one that is not a valid address (`1.2.3.4.5`, `256.0.0.1`, `example.123`)
///   is refused;
/// - an IPv6 literal is written in its canonical, compressed, lowercase form (`[::1]`);
/// - the port loses its leading zeros (`:0443` is 443), and a default port (`:80` for `http`,
///   `:443` for `https`) or an empty one is dropped;
/// - in the path, percent-escapes of unreserved characters (letters, digits, `-` `.` `_` `~`)
///   are decoded (`%7Euser` → `~user`, `%76%31` → `v1`) and the others are uppercased
///   (`%2f` → `%2F`); empty segments (`//`) are kept; the path ends in `/` (an empty path
///   becomes `/`).
///
/// [`resolve`](BaseUrl::resolve) applies the same equivalences when it compares an absolute
/// request URI with the base origin and path.
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
///
/// for spelling in [
///     "https://api.example.com:0443/%76%31/%7euser",
///     "https://API.Example.COM/v1/~user/",
/// ] {
///     assert_eq!(BaseUrl::parse(spelling).unwrap().as_str(), "https://api.example.com/v1/~user/");
/// }
/// let ip = BaseUrl::parse("http://0x7f.1:8080/a%2fb").unwrap();
/// assert_eq!(ip.as_str(), "http://127.0.0.1:8080/a%2Fb/");
/// let idn = BaseUrl::parse("https://Bücher.example/v1").unwrap();
/// assert_eq!(idn.as_str(), "https://xn--bcher-kva.example/v1/");
/// ```
///
/// # Refused
///
/// A scheme other than `http`/`https`; a missing host; a host that is not a valid host name,
/// IPv4 address or bracketed IPv6 address (see above); a port that is not 1–65535 or is written
/// with more than 16 characters; userinfo (`user:pass@` — credentials belong in headers), also
/// when the password holds a `/`, `?` or `#`, so a raw `@` in the path is refused as well
/// (write `%40`); a query; a fragment; whitespace; characters that must be percent-encoded;
/// and dot segments (`.`/`..`, also percent-encoded) in the path. Each refusal is an
/// [`InvalidBaseUrl`] whose [`kind`](InvalidBaseUrl::kind) and message say which part is
/// wrong and why — never repeating a password.
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
    /// - An absolute URI on the base origin passes when its path is under the base path (or is
    ///   the base path without its trailing `/`); its path is kept exactly and its authority is
    ///   replaced by the normalized one. Origin and path are compared with the equivalences of
    ///   [normalization](BaseUrl#normalization): scheme and host case, default and zero-padded
    ///   ports, IPv4 and IPv6 spellings, punycode case, escapes of unreserved characters
    ///   (`/%76%31/x` is under `/v1/`) and the hex case of other escapes. A port above 65535 is
    ///   refused ([`InvalidPort`](ResolveErrorKind::InvalidPort)), never read as the default.
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
    /// [`DotSegment`](ResolveErrorKind::DotSegment),
    /// [`UserInfo`](ResolveErrorKind::UserInfo) or
    /// [`InvalidPort`](ResolveErrorKind::InvalidPort).
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
        // NOTE: the base URL is in normal form, so the same scheme and authority as written
        // (what a URI built from it, or by the same program, has) is its origin: no port to
        // parse, no userinfo to look for.
        let exact =
            scheme.as_str() == self.scheme() && authority.as_str() == self.authority().as_str();
        if !exact {
            self.check_origin(scheme, authority, path)?;
        }
        let base_path = self.path();
        if !within_base_path(path, base_path) {
            let named = if hides_userinfo(path) {
                "the absolute URI's path".to_owned()
            } else {
                format!("path `{path}`")
            };
            return Err(ResolveError::new(
                ResolveErrorKind::OutsideBasePath,
                format!(
                    "{named} is not under the base path `{base_path}` of `{}`",
                    self.as_str()
                ),
            ));
        }
        self.check_dot_segments(path)?;
        // NOTE: `None` means "already in normal form, use it as it is": a URI this base URL
        // resolved before (a request prepared twice) costs no new allocation.
        if rooted && exact {
            return Ok(None);
        }
        let path = if path.is_empty() { "/" } else { path };
        self.build("", path, query).map(Some)
    }

    /// Refuses an absolute URI whose authority carries userinfo, or whose origin is not the
    /// base origin.
    fn check_origin(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        path: &str,
    ) -> Result<(), ResolveError> {
        if authority.as_str().contains('@') {
            return Err(ResolveError::new(
                ResolveErrorKind::UserInfo,
                "the absolute URI carries userinfo (`…@`); credentials belong in headers",
            ));
        }
        let quiet = hides_userinfo(path);
        let same = self.same_origin(scheme, authority).map_err(|why| {
            ResolveError::new(
                ResolveErrorKind::InvalidPort,
                if quiet {
                    format!("the port of the absolute URI {}", why.why())
                } else {
                    format!("the port of `{scheme}://{authority}` {}", why.why())
                },
            )
        })?;
        if same {
            return Ok(());
        }
        let named = if quiet {
            "the absolute URI's origin".to_owned()
        } else {
            format!("`{scheme}://{authority}`")
        };
        Err(ResolveError::new(
            ResolveErrorKind::ForeignOrigin,
            format!(
                "{named} is not the origin of the base URL `{}`; a request cannot leave its \
                 base origin",
                self.as_str()
            ),
        ))
    }

    /// Whether `scheme://authority` is the base origin, with the equivalences the base URL
    /// itself was normalized by: scheme and host case, default and zero-padded ports, IPv4
    /// and IPv6 spellings, internationalized names. `Err` when the port is not valid.
    fn same_origin(
        &self,
        scheme: &Scheme,
        authority: &Authority,
    ) -> Result<bool, normalize::PortError> {
        let default_port = match scheme.as_str() {
            s if s.eq_ignore_ascii_case("http") => 80,
            s if s.eq_ignore_ascii_case("https") => 443,
            _ => return Ok(false),
        };
        // NOTE: not `Authority::port_u16`, which reads `:70000` as no port at all, that is
        // as the default one.
        let host = authority.host();
        let port = match authority.as_str().get(host.len()..) {
            None | Some("") => None,
            Some(rest) => match rest.strip_prefix(':') {
                Some(port) => normalize::parse_port(port)?,
                None => return Ok(false),
            },
        };
        if !scheme.as_str().eq_ignore_ascii_case(self.scheme())
            || port.unwrap_or(default_port) != self.port_or_default()
        {
            return Ok(false);
        }
        let base_host = self.host();
        if host.eq_ignore_ascii_case(base_host) {
            return Ok(true);
        }
        // NOTE: the slow path, for a host spelled another way than the base host: IPv6
        // literals (`[0:0::1]`), IPv4 numbers (`127.1`), punycode in uppercase.
        Ok(match parse_ipv6_literal(host) {
            Some(addr) => parse_ipv6_literal(base_host) == Some(addr),
            None => normalize::normalize_host(host).is_ok_and(|h| h == base_host),
        })
    }

    fn check_dot_segments(&self, path: &str) -> Result<(), ResolveError> {
        // NOTE: fast path — without `.`, `%` or `\` no segment can be or hide a dot segment.
        if !path.bytes().any(|b| matches!(b, b'.' | b'%' | b'\\')) {
            return Ok(());
        }
        match path.split('/').find(|segment| is_dot_segment(segment)) {
            None => Ok(()),
            Some(segment) => {
                let named = if segment.contains('@') {
                    "a path segment".to_owned()
                } else {
                    format!("path segment `{segment}`")
                };
                Err(ResolveError::new(
                    ResolveErrorKind::DotSegment,
                    format!(
                        "{named} is a dot segment; dot segments are refused so that no request \
                         can climb out of the base path `{}`",
                        self.path()
                    ),
                ))
            }
        }
    }

    /// Builds `scheme://authority{prefix}{path}[?query]` with one allocation for the path.
    fn build(&self, prefix: &str, path: &str, query: Option<&str>) -> Result<Uri, ResolveError> {
        let path_and_query = PathAndQuery::from_maybe_shared(joined(prefix, path, query))
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
    // NOTE: the reference is shown redacted, so name the character that is wrong, and where.
    let hint = match first_invalid(reference) {
        Some((at, c)) => {
            let part = if reference[..at].contains('?') {
                "query"
            } else {
                "path"
            };
            format!(" ({c:?} at byte {at}, in the {part}: percent-encode it)")
        }
        None => String::new(),
    };
    ResolveError::new(
        ResolveErrorKind::InvalidReference,
        format!(
            "{:?} is not a valid URI reference: {cause}{hint}",
            crate::error::redact_url(reference)
        ),
    )
}

/// The first character a URI reference may not hold as it is, and its byte offset.
fn first_invalid(reference: &str) -> Option<(usize, char)> {
    reference
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)))
}

/// The longest path and query kept inline in its `Bytes` (see [`joined`]).
const INLINE_PATH: usize = 120;

/// `prefix`, `path` and `?query` one after another, in a `Bytes` that is one allocation and
/// clones without another when they fit in [`INLINE_PATH`] bytes.
///
/// NOTE: a `Bytes` made from a `Vec` allocates again on its first clone, and nearly every
/// request's URI is cloned once: the retry layer's spare copy, the redirect follower's.
fn joined(prefix: &str, path: &str, query: Option<&str>) -> Bytes {
    let len = prefix.len() + path.len() + query.map_or(0, |q| q.len() + 1);
    if len > INLINE_PATH {
        let mut buf = String::with_capacity(len);
        buf.push_str(prefix);
        buf.push_str(path);
        if let Some(query) = query {
            buf.push('?');
            buf.push_str(query);
        }
        return Bytes::from(buf);
    }
    let mut inline = InlinePath {
        len,
        buf: [0; INLINE_PATH],
    };
    let (start, rest) = inline.buf.split_at_mut(prefix.len());
    start.copy_from_slice(prefix.as_bytes());
    let (middle, rest) = rest.split_at_mut(path.len());
    middle.copy_from_slice(path.as_bytes());
    if let Some(query) = query {
        rest[0] = b'?';
        rest[1..=query.len()].copy_from_slice(query.as_bytes());
    }
    Bytes::from_owner(inline)
}

/// A short path and query, stored in the allocation of the `Bytes` that owns it.
struct InlinePath {
    len: usize,
    buf: [u8; INLINE_PATH],
}

impl AsRef<[u8]> for InlinePath {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
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
            Some(&b'%') => match escape_at(bytes, i) {
                Some((hi, lo)) => {
                    i += 2;
                    Some(hi << 4 | lo)
                }
                None => Some(b'%'),
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

/// Whether an `@` in `path` may end a password that holds a `/` (`https://u:a/b@h/`): an
/// error message then names neither the authority nor the path.
fn hides_userinfo(path: &str) -> bool {
    path.contains('@')
}

/// Whether the request path `path` is under `base` (a canonical base path ending in `/`), or
/// is `base` without its trailing `/`, once both are in canonical form: the escapes of
/// unreserved characters decoded, the other escapes' hex digits uppercased. `/%76%31/x` and
/// `/v1/x` are both under `/v1/`.
fn within_base_path(path: &str, base: &str) -> bool {
    let bare = &base[..base.len() - 1];
    if path.starts_with(base) || path == bare {
        return true;
    }
    // NOTE: without a `%` the path has no other spelling; the canonical copy is only made
    // for a path that has escapes and did not match as written.
    if !path.contains('%') {
        return false;
    }
    let path = canonical_escapes(path);
    path.starts_with(base) || path == bare
}

fn parse_ipv6_literal(host: &str) -> Option<Ipv6Addr> {
    host.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The index of `://` when `s` starts with `scheme://`.
fn scheme_end(s: &str) -> Option<usize> {
    // NOTE: scanned by hand: `str::find("://")` sets up a substring search, which costs more
    // than the rest of resolving a short path. A scheme is a letter, then letters, digits,
    // `+`, `-` or `.`, so the first other byte is where `://` must start.
    let bytes = s.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    bytes[end..].starts_with(b"://").then_some(end)
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
    let (host, port) =
        match parse_authority(authority, scheme_str) {
            Ok(parts) => parts,
            // NOTE: a password holding `/`, `?` or `#` (`https://u:Zm9v/YmFy@h/`, base64 is full
            // of `/`) ends the authority early, so the `@` is found after it and what looked
            // like a host or port is part of the secret: it is never echoed.
            Err(_) if rest[auth_end..].contains('@') => return fail(
                K::UserInfo,
                "a base URL cannot carry userinfo (`user:password@`; here the password seems to \
                 hold a `/`, `?` or `#`); credentials belong in headers (see \
                 SharedClientBuilder::basic_auth and bearer_auth)"
                    .into(),
            ),
            Err((kind, message)) => return fail(kind, message),
        };
    let port = port.filter(|&port| port != default_port);

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
    // NOTE: `https://svc:Zm9v/YmFy@api.example.com/` is host `svc`, port `Zm9v` (refused
    // above), but `https://Zm9v/YmFy@api.example.com/` is host `zm9v` with the rest of the
    // password in its path: a valid URL that would send the secret to the wrong host, and
    // show it in every `Display`. A base path is an API root; a literal `@` in it is `%40`.
    if tail[..path_end].contains('@') {
        return fail(
            K::UserInfo,
            "a base path cannot contain a raw `@`: it most likely ends a password that holds a \
             `/` (`user:pass/word@host`), and credentials belong in headers (see \
             SharedClientBuilder::basic_auth and bearer_auth); write a literal `@` as `%40`"
                .into(),
        );
    }
    // NOTE: an `@` after the path (in a query or fragment) may end a password holding a `/`;
    // then no part of the path is echoed in the message.
    let quiet = tail.contains('@');
    let path = normalize_path(&tail[..path_end], quiet)
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

/// Splits and normalizes an authority without userinfo: the canonical host and the port.
fn parse_authority(authority: &str, scheme: &str) -> Result<(String, Option<u16>), (K, String)> {
    if authority.is_empty() {
        return Err((K::MissingHost, format!("no host after `{scheme}://`")));
    }
    let (host, port_str) = if let Some(literal) = authority.strip_prefix('[') {
        let Some(close) = literal.find(']') else {
            return Err((
                K::InvalidHost,
                format!("the IPv6 literal `{authority}` has no closing `]`"),
            ));
        };
        let Ok(addr) = literal[..close].parse::<Ipv6Addr>() else {
            return Err((
                K::InvalidHost,
                format!(
                    "`[{}]` is not an IPv6 address (zone identifiers are not supported)",
                    &literal[..close]
                ),
            ));
        };
        let after = &literal[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => {
                return Err((
                    K::InvalidHost,
                    format!("unexpected `{after}` after the IPv6 literal; expected `:port`"),
                ))
            }
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err((
                K::InvalidHost,
                format!(
                    "`{authority}` has several `:`; write an IPv6 address in brackets, like `[::1]`"
                ),
            ));
        }
        if host.is_empty() {
            return Err((
                K::MissingHost,
                format!("no host before `:` in `{authority}`"),
            ));
        }
        let host = normalize::normalize_host(host).map_err(|e| {
            let why = match e {
                HostError::Char(c) => {
                    format!("contains {c:?}, which is not allowed in a host name")
                }
                HostError::Idna => "is not a valid internationalized domain name: UTS #46 \
                                    (IDNA) processing refuses it (a disallowed character, \
                                    invalid punycode, or a label longer than 63 bytes)"
                    .to_owned(),
                HostError::Ipv4(why) => format!(
                    "ends in a number, so it is read as an IPv4 address (WHATWG URL rules), but \
                     {why}"
                ),
            };
            (K::InvalidHost, format!("host `{host}` {why}"))
        })?;
        (host, port)
    };
    let port = match port_str.map(normalize::parse_port) {
        None => None,
        Some(Ok(port)) => port,
        Some(Err(why)) => {
            let shown: String = port_str.unwrap_or_default().chars().take(24).collect();
            return Err((K::InvalidPort, format!("port `{shown}` {}", why.why())));
        }
    };
    Ok((host, port))
}

/// Checks a base path and returns it in canonical form: the escapes of unreserved characters
/// decoded (`%7E` → `~`), the other escapes uppercased (`%2f` → `%2F`), a trailing `/`. When
/// `quiet`, messages name no part of the path (it may hold the end of a password).
fn normalize_path(path: &str, quiet: bool) -> Result<String, (K, String)> {
    let mut out = String::with_capacity(path.len() + 2);
    if !path.starts_with('/') {
        out.push('/');
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if let Some(digits) = escape_at(bytes, i) {
                push_canonical_escape(&mut out, bytes, i, digits);
                i += 3;
                continue;
            }
            let shown = if quiet {
                String::new()
            } else {
                format!(" `{}`", path[i..].chars().take(3).collect::<String>())
            };
            return Err((
                K::InvalidPath,
                format!(
                    "malformed percent-escape{shown} at byte {i} of the path; `%` must be \
                     followed by two hex digits"
                ),
            ));
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
            let shown = if quiet {
                "a character".to_owned()
            } else {
                format!("{c:?}")
            };
            return Err((
                K::InvalidPath,
                format!(
                    "the path contains {shown} at byte {i}, which must be percent-encoded in a URL"
                ),
            ));
        }
        out.push(b as char);
        i += 1;
    }
    if let Some(segment) = out.split('/').find(|s| is_dot_segment(s)) {
        let named = if quiet {
            "a path segment".to_owned()
        } else {
            format!("the path segment `{segment}`")
        };
        return Err((
            K::DotSegment,
            format!("{named} is a dot segment; write the path it stands for"),
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
mod invalid_reference_tests {
    use super::*;

    #[test]
    fn an_invalid_character_is_named_with_its_place() {
        let base = BaseUrl::parse("https://api.example.com/v1/").unwrap();
        let err = base.resolve_str("items?q=red shoes").unwrap_err();
        assert_eq!(err.kind(), ResolveErrorKind::InvalidReference);
        let text = err.to_string();
        assert!(text.contains("' ' at byte 11, in the query"), "{text}");
        assert!(!text.contains("red"), "the query stays hidden: {text}");
        let err = base.resolve_str("it ems").unwrap_err();
        assert!(err.to_string().contains("in the path"), "{err}");
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
