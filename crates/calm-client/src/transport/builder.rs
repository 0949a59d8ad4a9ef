use super::body::decompress;
use super::proxy::{ProxyConfig, ProxyConnector};
use super::service::{Following, Hyper, Transport};
use super::TransportError;
use crate::redirect::RedirectPolicy;
use http_body::Body;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::sync::Arc;
use std::time::Duration;
use tower::util::Either;
use tower::BoxError;

/// Configures a [`Transport`]; made by [`Transport::builder`]. See the
/// [module docs](super#defaults) for the defaults.
///
/// ```
/// use calm_client::transport::Transport;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), tower::BoxError> {
/// let transport: Transport = Transport::builder()
///     .connect_timeout(Duration::from_secs(3))
///     .pool_idle_timeout(Duration::from_secs(30))
///     .max_redirects(3)
///     .build()?;
/// # drop(transport);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TransportBuilder {
    roots: Vec<Vec<u8>>,
    proxy: ProxyConfig,
    pub(crate) settings: Settings,
}

/// The settings a built transport keeps for its `Debug` output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    built_in_roots: bool,
    https_only: bool,
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    tcp_nodelay: bool,
    tcp_keepalive: Option<Duration>,
    max_redirects: usize,
    decompression: bool,
}

impl Default for TransportBuilder {
    fn default() -> Self {
        TransportBuilder {
            roots: Vec::new(),
            proxy: ProxyConfig::default(),
            settings: Settings {
                built_in_roots: true,
                https_only: false,
                connect_timeout: Some(Duration::from_secs(10)),
                pool_idle_timeout: Some(Duration::from_secs(90)),
                pool_max_idle_per_host: usize::MAX,
                tcp_nodelay: true,
                tcp_keepalive: Some(Duration::from_secs(60)),
                max_redirects: 10,
                decompression: true,
            },
        }
    }
}

impl TransportBuilder {
    /// A builder with the [defaults](super#defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts one more root certificate, given in DER form (for a private CA, or a test
    /// server's self-signed certificate). It is checked by [`build`](Self::build).
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(der.into());
        self
    }

    /// Whether to trust the Mozilla root certificates bundled by `webpki-roots` (default
    /// on). Turn off to trust only the roots you add.
    pub fn tls_built_in_root_certs(mut self, enabled: bool) -> Self {
        self.settings.built_in_roots = enabled;
        self
    }

    /// Refuse plain `http` URIs (as a [`Connect`](super::TransportErrorKind::Connect) error,
    /// before any connection is made). Default off.
    pub fn https_only(mut self, enabled: bool) -> Self {
        self.settings.https_only = enabled;
        self
    }

    /// How long a TCP connect may take, `None` for no limit (default 10 s). When a name
    /// resolves to several addresses, the time is shared among them. The TLS handshake is
    /// not included: bound it with a timeout above the transport.
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.settings.connect_timeout = timeout.into();
        self
    }

    /// How long an idle pooled connection is kept, `None` to keep it until the server closes
    /// it (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.settings.pool_idle_timeout = timeout.into();
        self
    }

    /// The most idle connections kept per origin (default unlimited); `0` disables reuse.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.settings.pool_max_idle_per_host = max;
        self
    }

    /// Whether to set `TCP_NODELAY` on connections (default on: requests are small and
    /// latency matters more than packet count).
    pub fn tcp_nodelay(mut self, enabled: bool) -> Self {
        self.settings.tcp_nodelay = enabled;
        self
    }

    /// The TCP keepalive idle time, `None` to leave keepalive off (default 60 s), so dead
    /// pooled connections are noticed.
    pub fn tcp_keepalive(mut self, time: impl Into<Option<Duration>>) -> Self {
        self.settings.tcp_keepalive = time.into();
        self
    }

    /// The most redirects followed in a row (default 10); `0` returns every redirect as it
    /// is. Past the limit, the last redirect response is returned.
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.settings.max_redirects = max;
        self
    }

    /// Whether to ask for compressed responses and decode them (default on). On, a request
    /// without an `Accept-Encoding` header gets one listing the encodings compiled in (the
    /// `gzip`, `brotli`, `zstd` and `deflate` features, all on by default), and a response in
    /// one of them comes back decoded, without its `Content-Encoding` and `Content-Length`.
    /// Off, no header is added and every body comes back as the server sent it. See
    /// [Decompression](super#decompression).
    ///
    /// ```
    /// use calm_client::transport::Transport;
    ///
    /// # fn main() -> Result<(), calm_client::transport::TransportError> {
    /// // Responses exactly as sent: a `Content-Encoding: gzip` body stays compressed.
    /// let raw: Transport = Transport::builder().decompression(false).build()?;
    /// # drop(raw);
    /// # Ok(())
    /// # }
    /// ```
    pub fn decompression(mut self, enabled: bool) -> Self {
        self.settings.decompression = enabled;
        self
    }

    /// Sends requests to every origin through the proxy at `url`, replacing the proxy
    /// variables of the environment (see [Proxies](super#proxies)).
    ///
    /// `url` is `http://[user:password@]host[:port]` (an `https://` URL speaks TLS to the
    /// proxy; no scheme means `http://`). Percent-encoded credentials are sent to the proxy
    /// as `Proxy-Authorization: Basic …` and never to an origin. Requests to `http` origins go
    /// to the proxy in absolute form; `https` origins are reached through a `CONNECT` tunnel.
    /// [`http_proxy`](Self::http_proxy) and [`https_proxy`](Self::https_proxy) take
    /// precedence for their scheme; [`proxy_bypass`](Self::proxy_bypass) lists exceptions.
    ///
    /// The URL is checked by [`build`](Self::build).
    ///
    /// ```
    /// use calm_client::transport::{Transport, TransportErrorKind};
    ///
    /// # fn main() -> Result<(), calm_client::transport::TransportError> {
    /// let proxied: Transport = Transport::builder()
    ///     .proxy("http://user:secret@proxy.internal:3128")
    ///     .proxy_bypass("localhost, .svc.cluster.local")
    ///     .build()?;
    /// # drop(proxied);
    ///
    /// let err = Transport::builder().proxy("socks5://proxy:1080").build::<String>().unwrap_err();
    /// assert_eq!(err.kind(), TransportErrorKind::Config);
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy.all = Some(url.into());
        self
    }

    /// Sends requests to `http` origins through the proxy at `url` (whatever
    /// [`proxy`](Self::proxy) says), replacing the environment's proxy variables. Same URL
    /// form as [`proxy`](Self::proxy).
    pub fn http_proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy.http = Some(url.into());
        self
    }

    /// Sends requests to `https` origins through the proxy at `url`, in a `CONNECT` tunnel
    /// (whatever [`proxy`](Self::proxy) says), replacing the environment's proxy variables.
    /// Same URL form as [`proxy`](Self::proxy).
    pub fn https_proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy.https = Some(url.into());
        self
    }

    /// The destinations that skip the proxy, in `NO_PROXY` form, replacing `NO_PROXY` when
    /// the proxies come from the environment: comma-separated host names (each matching
    /// itself and its subdomains; a leading `.` is optional), IP addresses, CIDR ranges
    /// (`10.0.0.0/8`), or `*` for every destination.
    ///
    /// ```
    /// use calm_client::transport::Transport;
    ///
    /// # fn main() -> Result<(), calm_client::transport::TransportError> {
    /// let transport: Transport = Transport::builder()
    ///     .proxy("http://proxy.internal:3128")
    ///     .proxy_bypass("internal.example, 10.0.0.0/8, ::1")
    ///     .build()?;
    /// # drop(transport);
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy_bypass(mut self, list: impl Into<String>) -> Self {
        self.proxy.bypass = Some(list.into());
        self
    }

    /// Whether [`build`](Self::build) reads the proxy variables of the environment
    /// (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, and their lower-case forms)
    /// when no proxy is set explicitly (default on). See [Proxies](super#proxies).
    pub fn proxy_from_env(mut self, enabled: bool) -> Self {
        self.proxy.from_env = enabled;
        self
    }

    /// No proxy at all: forgets every proxy set before and ignores the environment. The
    /// same as `reqwest`'s `no_proxy()`; for a list of destinations that skip the proxy,
    /// see [`proxy_bypass`](Self::proxy_bypass).
    ///
    /// ```
    /// use calm_client::transport::Transport;
    ///
    /// # fn main() -> Result<(), calm_client::transport::TransportError> {
    /// let direct: Transport = Transport::builder().no_proxy().build()?;
    /// # drop(direct);
    /// # Ok(())
    /// # }
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyConfig {
            from_env: false,
            all: None,
            http: None,
            https: None,
            bypass: None,
        };
        self
    }

    /// The [`max_redirects`](Self::max_redirects) setting.
    ///
    /// ```
    /// use calm_client::transport::Transport;
    ///
    /// assert_eq!(Transport::builder().configured_max_redirects(), 10);
    /// assert_eq!(Transport::builder().max_redirects(0).configured_max_redirects(), 0);
    /// ```
    #[must_use]
    pub fn configured_max_redirects(&self) -> usize {
        self.settings.max_redirects
    }

    /// Builds the transport for request body type `B`. Needs no runtime; connections are
    /// made on the Tokio runtime that sends the first request.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] of kind [`Config`](super::TransportErrorKind::Config) when an
    /// added root certificate is not a valid DER X.509 certificate, when no root certificate
    /// is left (built-in roots off and none added), when rustls rejects the configuration, or
    /// when a proxy URL (given, or read from the environment) cannot be used: not a URL, a
    /// scheme other than `http` and `https` (SOCKS included), no host, or a path. The message
    /// names the method or variable the URL came from, never the URL itself.
    pub fn build<B>(self) -> Result<Transport<B>, TransportError>
    where
        B: Body + Send,
        B::Data: Send,
    {
        let settings = self.settings;
        let mut roots = RootCertStore::empty();
        if settings.built_in_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (index, der) in self.roots.into_iter().enumerate() {
            roots.add(CertificateDer::from(der)).map_err(|e| {
                TransportError::config(
                    format!(
                        "root certificate #{} is not a valid DER-encoded X.509 certificate",
                        index + 1
                    ),
                    Some(Box::new(e) as BoxError),
                )
            })?;
        }
        if roots.is_empty() {
            return Err(TransportError::config(
                "no root certificates: built-in roots are off and none were added",
                None,
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::config("rustls configuration", Some(Box::new(e))))?
        .with_root_certificates(roots)
        .with_no_client_auth();

        let proxies = self.proxy.resolve()?.map(Arc::new);

        let mut http = HttpConnector::new();
        // NOTE: the HTTPS connector hands `https` URIs to the TCP connector too.
        http.enforce_http(false);
        http.set_nodelay(settings.tcp_nodelay);
        http.set_connect_timeout(settings.connect_timeout);
        http.set_keepalive(settings.tcp_keepalive);
        // NOTE: to a proxy, HTTP/1.1 only (absolute-form requests and `CONNECT`), so its TLS
        // offers no ALPN.
        let to_proxy = proxies.as_ref().map(|proxies| {
            let to_proxy = HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http.clone());
            (Arc::clone(proxies), to_proxy)
        });
        let tcp = ProxyConnector::new(http, to_proxy);
        let connector = HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if settings.https_only {
            connector.https_only()
        } else {
            connector.https_or_http()
        };
        let connector = connector.enable_http1().enable_http2().wrap_connector(tcp);

        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .build(connector);
        let policy = RedirectPolicy::new(settings.max_redirects);
        let hyper = Hyper::new(client, proxies.clone());
        Ok(Transport::from_parts(
            decompress(
                if settings.max_redirects == 0 {
                    Either::Right(hyper)
                } else {
                    Either::Left(Following::new(hyper, policy))
                },
                settings.decompression,
            ),
            settings,
            proxies,
        ))
    }
}
