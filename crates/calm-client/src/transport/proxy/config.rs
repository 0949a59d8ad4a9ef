//! Where the proxies come from ([`ProxyConfig`]: the builder's settings or the environment,
//! checked) and which destination goes through which ([`Proxies`]).

use crate::error::redact_url;
use crate::transport::TransportError;
use http::header::HeaderValue;
use http::uri::Scheme;
use http::Uri;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use tower::BoxError;

/// The proxy settings of a [`TransportBuilder`](crate::transport::TransportBuilder), checked by
/// [`resolve`](ProxyConfig::resolve).
#[derive(Clone)]
pub(crate) struct ProxyConfig {
    pub(crate) from_env: bool,
    pub(crate) all: Option<String>,
    pub(crate) http: Option<String>,
    pub(crate) https: Option<String>,
    pub(crate) bypass: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            from_env: true,
            all: None,
            http: None,
            https: None,
            bypass: None,
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |url: &Option<String>| url.as_deref().map(redact_url);
        f.debug_struct("ProxyConfig")
            .field("from_env", &self.from_env)
            .field("all", &redacted(&self.all))
            .field("http", &redacted(&self.http))
            .field("https", &redacted(&self.https))
            .field("bypass", &self.bypass)
            .finish()
    }
}

/// One proxy URL and where it came from, for error messages.
struct Value {
    url: String,
    origin: Origin,
}

#[derive(Clone, Copy)]
enum Origin {
    Builder(&'static str),
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builder(method) => write!(f, "given to `{method}`"),
            Origin::Env(name) => write!(f, "in {name}"),
        }
    }
}

impl ProxyConfig {
    /// The proxies to use, `None` for none; reads the environment when the settings say so.
    pub(crate) fn resolve(&self) -> Result<Option<Proxies>, TransportError> {
        self.resolve_with(|name| std::env::var_os(name))
    }

    /// [`resolve`](Self::resolve) with `env` in place of the process environment.
    pub(crate) fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Proxies>, TransportError> {
        let explicit = self.all.is_some() || self.http.is_some() || self.https.is_some();
        let given = |url: &Option<String>, method| {
            url.clone().map(|url| Value {
                url,
                origin: Origin::Builder(method),
            })
        };
        let (all, http, https, bypass) = if explicit {
            (
                given(&self.all, "proxy"),
                given(&self.http, "http_proxy"),
                given(&self.https, "https_proxy"),
                self.bypass.clone(),
            )
        } else if self.from_env && env("REQUEST_METHOD").is_none() {
            let bypass = match &self.bypass {
                Some(bypass) => Some(bypass.clone()),
                None => read_env(&env, ["NO_PROXY", "no_proxy"])?.map(|v| v.url),
            };
            (
                read_env(&env, ["ALL_PROXY", "all_proxy"])?,
                read_env(&env, ["HTTP_PROXY", "http_proxy"])?,
                read_env(&env, ["HTTPS_PROXY", "https_proxy"])?,
                bypass,
            )
        } else {
            return Ok(None);
        };
        if all.is_none() && http.is_none() && https.is_none() {
            return Ok(None);
        }
        let mut matcher = Matcher::builder();
        if let Some(value) = all {
            check(&value)?;
            matcher = matcher.all(value.url);
        }
        if let Some(value) = http {
            check(&value)?;
            matcher = matcher.http(value.url);
        }
        if let Some(value) = https {
            check(&value)?;
            matcher = matcher.https(value.url);
        }
        if let Some(bypass) = bypass {
            matcher = matcher.no(bypass);
        }
        Ok(Some(Proxies {
            matcher: matcher.build(),
            loopback_direct: !explicit,
        }))
    }
}

/// The first of `names` that is set and not empty.
fn read_env(
    env: &impl Fn(&str) -> Option<OsString>,
    names: [&'static str; 2],
) -> Result<Option<Value>, TransportError> {
    for name in names {
        let Some(value) = env(name) else { continue };
        if value.is_empty() {
            continue;
        }
        let url = value.into_string().map_err(|_| {
            TransportError::config(
                format!(
                    "{name} is not valid UTF-8 (fix it, or turn off `proxy_from_env` to ignore \
                     the proxy variables)"
                ),
                None,
            )
        })?;
        return Ok(Some(Value {
            url,
            origin: Origin::Env(name),
        }));
    }
    Ok(None)
}

/// Checks a proxy URL: `[http|https://][user[:password]@]host[:port][/]`, as hyper-util's
/// matcher reads it (which would silently skip a URL it cannot use).
fn check(value: &Value) -> Result<(), TransportError> {
    let origin = value.origin;
    let fail = |problem: &str, source: Option<BoxError>| {
        let hint = match origin {
            Origin::Builder(_) => "",
            Origin::Env(_) => {
                " (fix it, or turn off `proxy_from_env` to ignore the proxy variables)"
            }
        };
        TransportError::config(format!("the proxy URL {origin} {problem}{hint}"), source)
    };
    let uri: Uri = value
        .url
        .parse()
        .map_err(|e| fail("is not a valid URL", Some(Box::new(e))))?;
    match uri.scheme_str() {
        None | Some("http" | "https") => {}
        Some(scheme) if scheme.starts_with("socks") => {
            return Err(fail(
                "is a SOCKS proxy, which is not supported (only http:// and https:// proxies are)",
                None,
            ))
        }
        Some(_) => {
            return Err(fail(
                "has an unsupported scheme (only http:// and https:// proxies are supported)",
                None,
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(fail("has no host", None));
    }
    // NOTE: `http::Uri` keeps any digits after the `:`; hyper-util would then drop the URL.
    let host_port = uri.authority().map_or("", |a| a.as_str());
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, hp)| hp);
    let port = match host_port.rsplit_once(':') {
        Some((_, port)) if !host_port.ends_with(']') => Some(port),
        _ => None,
    };
    if port.is_some_and(|port| !matches!(port.parse::<u16>(), Ok(1..))) {
        return Err(fail(
            "has a port that is not a number from 1 to 65535",
            None,
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(fail(
            "has a path or a query; a proxy URL is `http://[user:password@]host[:port]`",
            None,
        ));
    }
    Ok(())
}

/// The proxies of a built transport.
pub(crate) struct Proxies {
    matcher: Matcher,
    /// Proxies from the environment leave loopback destinations alone.
    loopback_direct: bool,
}

impl Proxies {
    /// The proxy for `dst`, if it goes through one.
    pub(crate) fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        if self.loopback_direct && dst.host().is_some_and(is_loopback) {
            return None;
        }
        self.matcher.intercept(dst)
    }

    /// The `Proxy-Authorization` for a request to `dst` that goes to a proxy in absolute
    /// form (an `http` origin); `None` for any other request.
    pub(crate) fn forward_auth(&self, dst: &Uri) -> Option<HeaderValue> {
        if dst.scheme() != Some(&Scheme::HTTP) {
            return None;
        }
        self.intercept(dst)?.basic_auth().cloned()
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // NOTE: hyper-util's `Debug` shows the proxy URIs without credentials.
        f.debug_struct("Proxies")
            .field("matcher", &self.matcher)
            .field("loopback_direct", &self.loopback_direct)
            .finish()
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| host.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportErrorKind;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(*v)))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    fn target(proxies: &Proxies, dst: &str) -> Option<String> {
        proxies.intercept(&uri(dst)).map(|i| i.uri().to_string())
    }

    #[test]
    fn nothing_set_means_no_proxies() {
        assert!(ProxyConfig::default()
            .resolve_with(env(&[]))
            .unwrap()
            .is_none());
        // Empty variables count as unset.
        let empty = env(&[("HTTP_PROXY", ""), ("HTTPS_PROXY", ""), ("ALL_PROXY", "")]);
        assert!(ProxyConfig::default()
            .resolve_with(empty)
            .unwrap()
            .is_none());
    }

    #[test]
    fn env_variables_by_scheme_upper_case_first() {
        let vars = env(&[
            ("HTTP_PROXY", "http://upper-http:3128"),
            ("http_proxy", "http://lower-http:3128"),
            ("https_proxy", "http://lower-https:3129"),
            ("NO_PROXY", "internal.example, 10.0.0.0/8"),
        ]);
        let proxies = ProxyConfig::default().resolve_with(vars).unwrap().unwrap();
        let http = target(&proxies, "http://api.example.com/x");
        assert_eq!(http.as_deref(), Some("http://upper-http:3128/"));
        let https = target(&proxies, "https://api.example.com/x");
        assert_eq!(https.as_deref(), Some("http://lower-https:3129/"));
        assert_eq!(target(&proxies, "https://svc.internal.example/x"), None);
        assert_eq!(target(&proxies, "http://10.1.2.3/x"), None);
    }

    #[test]
    fn all_proxy_fills_in_for_both_schemes() {
        let vars = env(&[
            ("all_proxy", "http://all:3128"),
            ("HTTPS_PROXY", "http://tls:3128"),
        ]);
        let proxies = ProxyConfig::default().resolve_with(vars).unwrap().unwrap();
        let http = target(&proxies, "http://api.example.com/");
        assert_eq!(http.as_deref(), Some("http://all:3128/"));
        let https = target(&proxies, "https://api.example.com/");
        assert_eq!(https.as_deref(), Some("http://tls:3128/"));
    }

    #[test]
    fn env_proxies_leave_loopback_alone_explicit_ones_do_not() {
        let vars = env(&[("ALL_PROXY", "http://proxy:3128")]);
        let from_env = ProxyConfig::default().resolve_with(vars).unwrap().unwrap();
        for dst in [
            "http://127.0.0.1:8080/",
            "http://127.9.9.9/",
            "https://[::1]:8443/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            assert_eq!(target(&from_env, dst), None, "{dst}");
        }
        assert!(target(&from_env, "http://notlocalhost/").is_some());

        let explicit = ProxyConfig {
            all: Some("http://proxy:3128".into()),
            ..ProxyConfig::default()
        };
        let explicit = explicit.resolve_with(env(&[])).unwrap().unwrap();
        assert!(target(&explicit, "http://127.0.0.1:8080/").is_some());
    }

    #[test]
    fn explicit_settings_replace_the_environment() {
        let vars = env(&[
            ("HTTPS_PROXY", "http://from-env:3128"),
            ("NO_PROXY", "api.example.com"),
        ]);
        let config = ProxyConfig {
            http: Some("http://explicit:3128".into()),
            ..ProxyConfig::default()
        };
        let proxies = config.resolve_with(vars).unwrap().unwrap();
        let http = target(&proxies, "http://api.example.com/");
        assert_eq!(http.as_deref(), Some("http://explicit:3128/"));
        // No https proxy: the environment's is not mixed in.
        assert_eq!(target(&proxies, "https://api.example.com/"), None);
    }

    #[test]
    fn an_explicit_bypass_replaces_no_proxy() {
        let vars = env(&[
            ("HTTP_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "a.example"),
        ]);
        let config = ProxyConfig {
            bypass: Some("b.example".into()),
            ..ProxyConfig::default()
        };
        let proxies = config.resolve_with(vars).unwrap().unwrap();
        assert!(target(&proxies, "http://a.example/").is_some());
        assert_eq!(target(&proxies, "http://b.example/"), None);
    }

    #[test]
    fn environment_off_or_cgi_reads_nothing() {
        let vars = || env(&[("HTTP_PROXY", "http://proxy:3128")]);
        let off = ProxyConfig {
            from_env: false,
            ..ProxyConfig::default()
        };
        assert!(off.resolve_with(vars()).unwrap().is_none());
        let cgi = env(&[
            ("HTTP_PROXY", "http://proxy:3128"),
            ("REQUEST_METHOD", "GET"),
        ]);
        assert!(ProxyConfig::default().resolve_with(cgi).unwrap().is_none());
    }

    #[test]
    fn credentials_become_basic_auth_for_forwarded_requests_only() {
        let config = ProxyConfig {
            all: Some("http://user:p%40ss@proxy:3128".into()),
            ..ProxyConfig::default()
        };
        let proxies = config.resolve_with(env(&[])).unwrap().unwrap();
        // base64("user:p@ss")
        let auth = proxies.forward_auth(&uri("http://api.example.com/"));
        assert_eq!(auth.unwrap(), "Basic dXNlcjpwQHNz");
        // An https origin gets them in the CONNECT request, never on the request itself.
        assert!(proxies
            .forward_auth(&uri("https://api.example.com/"))
            .is_none());
        // The proxy's URI keeps no credentials.
        let shown = target(&proxies, "http://api.example.com/").unwrap();
        assert_eq!(shown, "http://proxy:3128/");
        assert!(!format!("{proxies:?}").contains("user"));
    }

    #[test]
    fn scheme_less_urls_are_http() {
        let config = ProxyConfig {
            all: Some("proxy.example:3128".into()),
            ..ProxyConfig::default()
        };
        let proxies = config.resolve_with(env(&[])).unwrap().unwrap();
        let shown = target(&proxies, "https://api.example.com/");
        assert_eq!(shown.as_deref(), Some("http://proxy.example:3128/"));
    }

    #[test]
    fn good_urls_pass() {
        for url in [
            "http://proxy:3128",
            "https://proxy",
            "http://[::1]",
            "http://u:p@[::1]:3128/",
            "proxy.example",
        ] {
            let config = ProxyConfig {
                all: Some(url.into()),
                ..ProxyConfig::default()
            };
            assert!(config.resolve_with(env(&[])).unwrap().is_some(), "{url}");
        }
    }

    #[test]
    fn bad_urls_are_config_errors_that_name_their_origin_not_their_content() {
        for (url, problem) in [
            ("http://user:hunter2@proxy host:3128", "is not a valid URL"),
            ("http://user:hunter2@proxy:99999", "has a port that is not"),
            ("http://user:hunter2@proxy:0", "has a port that is not"),
            ("socks5://user:hunter2@proxy:1080", "SOCKS"),
            ("ftp://user:hunter2@proxy", "unsupported scheme"),
            ("http://user:hunter2@proxy:3128/path", "has a path"),
            ("http://user:hunter2@proxy:3128?q", "has a path"),
        ] {
            let config = ProxyConfig {
                https: Some(url.into()),
                ..ProxyConfig::default()
            };
            let err = config.resolve_with(env(&[])).unwrap_err();
            assert_eq!(err.kind(), TransportErrorKind::Config, "{url}");
            let text = err.to_string();
            assert!(text.contains("given to `https_proxy`"), "{text}");
            assert!(text.contains(problem), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }

        let vars = env(&[("https_proxy", "http://user:hunter2@proxy host")]);
        let err = ProxyConfig::default().resolve_with(vars).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("in https_proxy"), "{text}");
        assert!(text.contains("proxy_from_env"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn builder_debug_hides_credentials() {
        let config = ProxyConfig {
            all: Some("http://user:hunter2@proxy:3128".into()),
            ..ProxyConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("proxy:3128"), "{shown}");
    }
}
