//! [`RedirectPolicy`]: which redirects are followed, what each hop carries, and how hops are
//! marked.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION,
};
use http::uri::Scheme;
use http::{Request, Uri};
use tower_http::follow_redirect::policy::{Action, Attempt, Limited, Policy};

use super::RedirectHop;
use crate::base_url::normalize::parse_port;

/// calm's redirect policy (a tower-http [`Policy`]): at most `max` redirects in a row,
/// credentials dropped for good once a hop leaves the origin, and every follow-up request
/// marked with a [`RedirectHop`].
///
/// Dropped from every hop after the first one that changes origin: `Authorization`, `Cookie`,
/// `Proxy-Authorization` and every header whose value is marked sensitive (an API key set
/// with [`HeaderValue::set_sensitive`](http::HeaderValue::set_sensitive)).
///
/// ```
/// use calm_client::redirect::RedirectPolicy;
///
/// let policy = RedirectPolicy::new(5);
/// assert_eq!(policy.max_redirects(), 5);
/// ```
//
// NOTE: tower-http's `FilterCredentials` decides hop by hop, against the previous hop only,
// and `FollowRedirect` rebuilds each hop from the original headers: so `api → evil/a →
// evil/b` sent the credentials again to `evil/b`. Here the decision sticks for the rest of
// the request, as the Fetch standard has it.
#[derive(Clone, Debug)]
pub struct RedirectPolicy {
    limited: Limited,
    max: usize,
    left_origin: bool,
    /// Requests sent so far for this request (the original one included).
    requests: u32,
    /// The origin of the original request, known from the first redirect on (boxed: the
    /// policy is inline in every copy of the transport, and most requests are not redirected).
    origin: Option<Box<Uri>>,
    next_same_origin: bool,
}

impl RedirectPolicy {
    /// Follows at most `max` redirects in a row; `0` returns every redirect as it is.
    #[must_use]
    pub fn new(max: usize) -> RedirectPolicy {
        RedirectPolicy {
            limited: Limited::new(max),
            max,
            left_origin: false,
            requests: 0,
            origin: None,
            next_same_origin: true,
        }
    }

    /// The most redirects followed in a row.
    #[must_use]
    pub fn max_redirects(&self) -> usize {
        self.max
    }
}

impl<B, E> Policy<B, E> for RedirectPolicy {
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, E> {
        let action = Policy::<B, E>::redirect(&mut self.limited, attempt)?;
        if let Action::Follow = action {
            let origin = self
                .origin
                .get_or_insert_with(|| Box::new(attempt.previous().clone()));
            self.next_same_origin = same_origin(origin, attempt.location());
            self.left_origin |= !same_origin(attempt.previous(), attempt.location());
        }
        Ok(action)
    }

    fn on_request(&mut self, request: &mut Request<B>) {
        self.requests = self.requests.saturating_add(1);
        if self.requests > 1 {
            request.extensions_mut().insert(RedirectHop {
                hop: self.requests - 1,
                same_origin: self.next_same_origin,
                left_origin: self.left_origin,
            });
        }
        if self.left_origin {
            drop_credentials(request.headers_mut());
        }
    }
}

/// Same scheme, host (ignoring case) and port, default ports included.
/// Whether a header is a credential the policy keeps from every hop once a request has left
/// its origin: `Authorization`, `Cookie`, `Proxy-Authorization`, and any value marked
/// [sensitive](HeaderValue::is_sensitive).
///
/// ```
/// use calm_client::redirect::is_credential;
/// use http::header::{HeaderName, HeaderValue, AUTHORIZATION, USER_AGENT};
///
/// let mut key = HeaderValue::from_static("k-123");
/// assert!(!is_credential(&HeaderName::from_static("x-api-key"), &key));
/// key.set_sensitive(true);
/// assert!(is_credential(&HeaderName::from_static("x-api-key"), &key));
/// assert!(is_credential(&AUTHORIZATION, &HeaderValue::from_static("Bearer t")));
/// assert!(!is_credential(&USER_AGENT, &HeaderValue::from_static("app/1")));
/// ```
#[must_use]
pub fn is_credential(name: &HeaderName, value: &HeaderValue) -> bool {
    value.is_sensitive() || [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION].contains(name)
}

/// Removes every [credential](is_credential) from `headers`.
pub(crate) fn drop_credentials(headers: &mut HeaderMap) {
    let credentials: Vec<_> = headers
        .iter()
        .filter(|(name, value)| is_credential(name, value))
        .map(|(name, _)| name.clone())
        .collect();
    for name in credentials {
        headers.remove(name);
    }
}

pub(crate) fn same_origin(a: &Uri, b: &Uri) -> bool {
    let default_port = match (a.scheme(), b.scheme()) {
        (Some(x), Some(y)) if x == y && *x == Scheme::HTTP => 80,
        (Some(x), Some(y)) if x == y && *x == Scheme::HTTPS => 443,
        _ => return false,
    };
    let same_host = match (a.host(), b.host()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    // NOTE: ports read by the base URL's rules, so `:0443` is 443 and `:70000` is no port at
    // all (not the default one): an unreadable port is never the same origin.
    let port = |uri: &Uri| match raw_port(uri).map(parse_port) {
        None | Some(Ok(None)) => Some(default_port),
        Some(Ok(Some(port))) => Some(port),
        Some(Err(_)) => None,
    };
    same_host && port(a).is_some() && port(a) == port(b)
}

/// The port as written (`http`'s own reading drops a port it cannot parse as a `u16`).
fn raw_port(uri: &Uri) -> Option<&str> {
    let authority = uri.authority()?.as_str();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (_, port) = host_port.rsplit_once(':')?;
    (!port.contains(']')).then_some(port)
}

#[cfg(test)]
mod tests {
    use super::same_origin;
    use http::Uri;

    #[test]
    fn origins() {
        let same = [
            ("https://h/a", "https://h/b"),
            ("https://h/a", "https://H:443/b"),
            ("http://h:80/a", "http://h/b"),
            ("http://[::1]:8080/", "http://[::1]:8080/x"),
            ("https://h/a", "https://h:0443/b"),
        ];
        for (a, b) in same {
            assert!(
                same_origin(&Uri::from_static(a), &Uri::from_static(b)),
                "{a} {b}"
            );
        }
        let other = [
            ("https://h/a", "http://h/a"),
            ("https://h/a", "https://h:8443/a"),
            ("https://h/a", "https://h.evil/a"),
            ("http://h:443/a", "https://h/a"),
            ("https://h/a", "/relative"),
            ("https://h/a", "https://h:70000/a"),
        ];
        for (a, b) in other {
            assert!(
                !same_origin(&Uri::from_static(a), &Uri::from_static(b)),
                "{a} {b}"
            );
        }
    }
}
