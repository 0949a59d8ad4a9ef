//! The redirect policy of the default transport.

use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::uri::Scheme;
use http::{Request, Uri};
use tower_http::follow_redirect::policy::{Action, And, Attempt, Limited, Policy};

/// At most `n` redirects in a row, credentials dropped once a hop leaves the origin.
pub(crate) type Redirects = And<Limited, FilterCredentials>;

/// Drops `Authorization`, `Cookie`, `Proxy-Authorization` and every header whose value is
/// marked sensitive (an API key set with
/// [`HeaderValue::set_sensitive`](http::HeaderValue::set_sensitive)) from every hop after the
/// first one that changes origin.
///
/// NOTE: tower-http's `FilterCredentials` decides hop by hop, against the previous hop only,
/// and `FollowRedirect` rebuilds each hop from the original headers: so `api → evil/a →
/// evil/b` sent the credentials again to `evil/b`. Here the decision sticks for the rest of
/// the request, as the Fetch standard has it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FilterCredentials {
    left_origin: bool,
}

impl<B, E> Policy<B, E> for FilterCredentials {
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, E> {
        self.left_origin |= !same_origin(attempt.previous(), attempt.location());
        Ok(Action::Follow)
    }

    fn on_request(&mut self, request: &mut Request<B>) {
        if self.left_origin {
            let headers = request.headers_mut();
            let sensitive: Vec<_> = headers
                .iter()
                .filter(|(_, value)| value.is_sensitive())
                .map(|(name, _)| name.clone())
                .collect();
            for name in sensitive {
                headers.remove(name);
            }
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                headers.remove(name);
            }
        }
    }
}

/// Same scheme, host (ignoring case) and port, default ports included.
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let default_port = match (a.scheme(), b.scheme()) {
        (Some(x), Some(y)) if x == y && *x == Scheme::HTTP => 80,
        (Some(x), Some(y)) if x == y && *x == Scheme::HTTPS => 443,
        _ => return false,
    };
    let same_host = match (a.host(), b.host()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    same_host && a.port_u16().unwrap_or(default_port) == b.port_u16().unwrap_or(default_port)
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
        ];
        for (a, b) in other {
            assert!(
                !same_origin(&Uri::from_static(a), &Uri::from_static(b)),
                "{a} {b}"
            );
        }
    }
}
