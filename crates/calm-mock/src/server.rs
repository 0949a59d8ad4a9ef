//! The server: [`MockApi`] and [`MockApiBuilder`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::body::MockBody;
use crate::quota::{Admission, QuotaHeaders, QuotaState};
use crate::record::{Entry, Log, RecordedRequest, DEFAULT_LOG_LIMIT};
use crate::reply::{Action, Reply};

/// A scripted HTTP API on `127.0.0.1`, for tests, examples and benches.
///
/// Start one with [`MockApi::start`] (plain HTTP) or [`MockApi::builder`] (TLS, quota). It
/// listens on an ephemeral loopback port, serves HTTP/1.1 and HTTP/2 (by ALPN in TLS mode, by
/// prior knowledge otherwise), and runs as tasks on the tokio runtime that started it.
///
/// - **Script** answers per path with [`script`](MockApi::script); unscripted paths answer
///   `200 OK` with the body `ok`.
/// - **Inspect** what arrived with [`requests`](MockApi::requests) (every request is recorded
///   as soon as its head arrives, its body filled in before it is answered; the most recent
///   [`DEFAULT_LOG_LIMIT`](crate::DEFAULT_LOG_LIMIT) are kept unless
///   [`log_limit`](MockApiBuilder::log_limit) says otherwise),
///   [`request_count`](MockApi::request_count) (every request, exactly) and
///   [`connections`](MockApi::connections).
/// - **Quota mode** ([`MockApiBuilder::quota`]) answers `429` with `Retry-After` once a client
///   goes faster than the quota; [`count_429`](MockApi::count_429) counts those answers.
///
/// Dropping the `MockApi` stops accepting, closes every open connection and abandons every
/// pending answer (stalled ones included).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_mock::{MockApi, Reply};
///
/// let api = MockApi::start().await;
/// api.script("/v1/items", [Reply::status(503), Reply::ok().body("[]")]);
/// assert!(api.base_url().starts_with("http://127.0.0.1:"));
/// assert!(api.url("/v1/items").ends_with("/v1/items"));
/// assert_eq!(api.request_count(), 0);
/// # }
/// ```
pub struct MockApi {
    addr: SocketAddr,
    base_url: String,
    root_cert: Option<Vec<u8>>,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    // NOTE: never sent on; dropping it (with the MockApi) is the shutdown signal every
    // connection task and every pending answer waits for.
    _shutdown: watch::Sender<()>,
}

impl MockApi {
    /// Starts a plain-HTTP mock on `127.0.0.1:0` with default settings.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound ([`MockApiBuilder::try_start`] returns the error
    /// instead), or when called outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let api = calm_mock::MockApi::start().await;
    /// assert_eq!(api.addr().ip(), std::net::Ipv4Addr::LOCALHOST);
    /// # }
    /// ```
    pub async fn start() -> MockApi {
        MockApiBuilder::new().start().await
    }

    /// A builder for TLS and quota mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let api = calm_mock::MockApi::builder()
    ///     .tls()
    ///     .quota(10, Duration::from_secs(1))
    ///     .start()
    ///     .await;
    /// assert!(api.base_url().starts_with("https://"));
    /// # }
    /// ```
    pub fn builder() -> MockApiBuilder {
        MockApiBuilder::new()
    }

    /// The base URL, `http://127.0.0.1:PORT/` (`https://…` in TLS mode); it ends in `/`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The base URL joined with `path`; a leading `/` is optional.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let api = calm_mock::MockApi::start().await;
    /// assert_eq!(api.url("/v1/x"), format!("{}v1/x", api.base_url()));
    /// assert_eq!(api.url("v1/x"), api.url("/v1/x"));
    /// # }
    /// ```
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.base_url,
            path.strip_prefix('/').unwrap_or(path)
        )
    }

    /// The socket address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the mock serves HTTPS.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use calm_mock::MockApi;
    ///
    /// assert!(!MockApi::start().await.is_tls());
    /// assert!(MockApi::builder().tls().start().await.is_tls());
    /// # }
    /// ```
    pub fn is_tls(&self) -> bool {
        self.root_cert.is_some()
    }

    /// The DER of the self-signed certificate made at start-up, in TLS mode (`None` otherwise).
    ///
    /// The certificate is valid for `localhost` and `127.0.0.1`; add it as the only root of
    /// a client's trust store to talk to the mock ([`MockApiBuilder::tls`] shows a whole
    /// HTTPS client).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let api = calm_mock::MockApi::builder().tls().start().await;
    /// let der = api.root_certificate_der().expect("TLS mode has a certificate");
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(der.into()).unwrap();
    /// # }
    /// ```
    pub fn root_certificate_der(&self) -> Option<Vec<u8>> {
        self.root_cert.clone()
    }

    /// Scripts the answers for `path` (exact path, query ignored, any method).
    ///
    /// Replies are served in order, one per request; the last one then repeats forever.
    /// Scripting a path again replaces its script; an empty script returns the path to the
    /// default `200 OK` "ok". In quota mode a request refused with 429 does not use up a reply.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/flaky").parse().unwrap();
    ///
    /// // Two failures, then success for every later request.
    /// api.script("/flaky", [Reply::status(503), Reply::status(502), Reply::ok()]);
    /// let mut statuses = Vec::new();
    /// for _ in 0..4 {
    ///     statuses.push(client.get(uri.clone()).await.unwrap().status().as_u16());
    /// }
    /// assert_eq!(statuses, [503, 502, 200, 200]);
    ///
    /// // An empty script gives the path its default answer back.
    /// api.script("/flaky", []);
    /// assert_eq!(client.get(uri).await.unwrap().status(), 200);
    /// # }
    /// ```
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let replies: VecDeque<Reply> = replies.into_iter().collect();
        let mut scripts = lock(&self.shared.scripts);
        if replies.is_empty() {
            scripts.remove(path);
        } else {
            scripts.insert(path.to_owned(), replies);
        }
    }

    /// The requests received so far, in order of arrival: every one of them, or the most
    /// recent [`log_limit`](MockApiBuilder::log_limit) ones (10,000 by default) in a long run.
    ///
    /// A request is recorded as soon as its head has been read, before it uses up a scripted
    /// reply, before any [`delay`](Reply::delay), and whatever the client does next (hang up
    /// included). Its [`body`](RecordedRequest::body) is filled in once read, before the
    /// request is answered (never, when [`record_bodies`](MockApiBuilder::record_bodies) is
    /// off). So once a client has its answer, its request is in the log whole.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::MockApi;
    ///
    /// let api = MockApi::start().await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// for path in ["/a", "/b", "/a"] {
    ///     client.get(api.url(path).parse().unwrap()).await.unwrap();
    /// }
    /// let paths: Vec<_> = api.requests().iter().map(|r| r.uri.path().to_owned()).collect();
    /// assert_eq!(paths, ["/a", "/b", "/a"]);
    /// # }
    /// ```
    pub fn requests(&self) -> Vec<RecordedRequest> {
        // NOTE: rebuilt outside the lock, which every connection takes to record.
        let entries = lock(&self.shared.log).snapshot();
        entries.iter().map(Entry::to_request).collect()
    }

    /// How many requests have been received so far: every request whose head the mock read,
    /// including those answered by the quota, those that got no answer, and those no longer
    /// kept by [`requests`](MockApi::requests) (which returns them all while the count is
    /// within the [`log_limit`](MockApiBuilder::log_limit)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/bye", [Reply::close()]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// // Even a request that gets no answer is counted.
    /// assert!(client.get(api.url("/bye").parse().unwrap()).await.is_err());
    /// assert_eq!(api.request_count(), 1);
    /// # }
    /// ```
    pub fn request_count(&self) -> usize {
        usize::try_from(lock(&self.shared.log).total()).unwrap_or(usize::MAX)
    }

    /// How many TCP connections the mock has accepted so far (TLS handshakes that then
    /// failed included).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::MockApi;
    ///
    /// let api = MockApi::start().await;
    /// let uri: http::Uri = api.url("/").parse().unwrap();
    /// for _ in 0..2 {
    ///     // A new client each time, so a new connection each time.
    ///     let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///     client.get(uri.clone()).await.unwrap();
    /// }
    /// assert_eq!(api.connections(), 2);
    /// # }
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many requests the quota has refused with `429 Too Many Requests` so far (scripted
    /// 429s are not counted). A request is counted when it is refused, as its head arrives,
    /// like [`request_count`](MockApi::request_count): a client that hangs up before reading
    /// its 429 is counted too.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use std::time::Duration;
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::builder().quota(1, Duration::from_secs(60)).start().await;
    /// api.script("/busy", [Reply::status(429)]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// // Within the quota, so the script answers: a 429 of its own.
    /// let scripted = client.get(api.url("/busy").parse().unwrap()).await.unwrap();
    /// assert_eq!(scripted.status(), 429);
    /// // Over the quota: the quota answers.
    /// let refused = client.get(api.url("/other").parse().unwrap()).await.unwrap();
    /// assert_eq!(refused.status(), 429);
    /// assert_eq!(api.count_429(), 1);
    /// # }
    /// ```
    pub fn count_429(&self) -> usize {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    /// Changes the quota of a server in quota mode: `limit` per `period` from now on. With
    /// the same period, the current window keeps what it counted; with another, windows are
    /// counted anew in the new period from the server's start. Returns `false`, changing
    /// nothing, for a server started without a quota.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use std::time::Duration;
    /// use calm_mock::{MockApi, QuotaHeaders};
    ///
    /// let api = MockApi::builder()
    ///     .quota(1, Duration::from_secs(60))
    ///     .quota_headers(QuotaHeaders::Silent)
    ///     .start()
    ///     .await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let get = || client.get(api.url("/").parse().unwrap());
    ///
    /// assert_eq!(get().await.unwrap().status(), 200);
    /// let refused = get().await.unwrap();
    /// assert_eq!(refused.status(), 429);
    /// assert!(!refused.headers().contains_key("retry-after"));
    ///
    /// assert!(api.set_quota(3, Duration::from_secs(60)));
    /// assert_eq!(get().await.unwrap().status(), 200); // the window's 2nd and 3rd places
    /// assert!(!MockApi::start().await.set_quota(3, Duration::from_secs(60)));
    /// # }
    /// ```
    pub fn set_quota(&self, limit: u32, period: Duration) -> bool {
        match &self.shared.quota {
            Some(quota) => {
                quota.set(limit, period);
                true
            }
            None => false,
        }
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl fmt::Debug for MockApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockApi")
            .field("base_url", &self.base_url)
            .field("tls", &self.is_tls())
            .field("quota", &self.shared.quota)
            .field("connections", &self.connections())
            .field("requests", &self.request_count())
            .finish()
    }
}

/// Configuration of a [`MockApi`]: TLS and quota mode. From [`MockApi::builder`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use http_body_util::BodyExt;
/// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use std::time::Duration;
/// use calm_mock::{MockApi, QuotaHeaders};
///
/// let api = MockApi::builder()
///     .quota(5, Duration::from_secs(1))
///     .quota_headers(QuotaHeaders::XRateLimitEpoch)
///     .start()
///     .await;
/// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
///
/// let res = client.get(api.url("/").parse().unwrap()).await.unwrap();
/// assert_eq!(res.headers()["x-ratelimit-limit"], "5");
/// assert_eq!(res.headers()["x-ratelimit-remaining"], "4");
/// // The end of the window as Unix seconds (GitHub's style), not a delay.
/// let reset: u64 = res.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
/// assert!(reset > 1_700_000_000);
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct MockApiBuilder {
    tls: bool,
    quota: Option<(u32, Duration)>,
    quota_headers: QuotaHeaders,
    log_limit: usize,
    record_bodies: bool,
}

impl Default for MockApiBuilder {
    fn default() -> Self {
        MockApiBuilder {
            tls: false,
            quota: None,
            quota_headers: QuotaHeaders::default(),
            log_limit: DEFAULT_LOG_LIMIT,
            record_bodies: true,
        }
    }
}

impl MockApiBuilder {
    /// The defaults: plain HTTP, no quota, a log of the most recent
    /// [`DEFAULT_LOG_LIMIT`](crate::DEFAULT_LOG_LIMIT) requests with their bodies.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::MockApiBuilder;
    ///
    /// let api = MockApiBuilder::new().start().await;
    /// assert!(api.base_url().starts_with("http://"));
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let res = client.get(api.url("/").parse().unwrap()).await.unwrap();
    /// assert!(!res.headers().contains_key("x-ratelimit-limit")); // no quota
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves HTTPS with a self-signed certificate for `localhost` and `127.0.0.1`, made at
    /// start-up (see [`MockApi::root_certificate_der`]). ALPN offers `h2` and `http/1.1`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use calm_mock::{MockApi, Reply};
    /// use http_body_util::BodyExt;
    /// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    ///
    /// let api = MockApi::builder().tls().start().await;
    /// api.script("/secure", [Reply::ok().body("sealed")]);
    ///
    /// // A client that trusts the mock's certificate, and nothing else.
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(api.root_certificate_der().unwrap().into()).unwrap();
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let tls = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let https = hyper_rustls::HttpsConnectorBuilder::new()
    ///     .with_tls_config(tls)
    ///     .https_only()
    ///     .enable_http1()
    ///     .enable_http2()
    ///     .build();
    /// let client = Client::builder(TokioExecutor::new()).build::<_, String>(https);
    ///
    /// let res = client.get(api.url("/secure").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.version(), http::Version::HTTP_2); // chosen by ALPN
    /// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "sealed");
    /// # }
    /// ```
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Quota mode: at most `limit` requests per fixed window of `period`, windows counted from
    /// server start. Requests over the limit are answered `429` with `Retry-After` (seconds
    /// to the next window, rounded up); every response carries quota headers (see
    /// [`quota_headers`](Self::quota_headers)). A zero `period` counts as one millisecond.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use std::time::Duration;
    /// use calm_mock::MockApi;
    ///
    /// let api = MockApi::builder().quota(2, Duration::from_secs(60)).start().await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/v1/items").parse().unwrap();
    ///
    /// let mut statuses = Vec::new();
    /// let mut last = http::HeaderMap::new();
    /// for _ in 0..3 {
    ///     let res = client.get(uri.clone()).await.unwrap();
    ///     statuses.push(res.status().as_u16());
    ///     last = res.headers().clone();
    /// }
    /// assert_eq!(statuses, [200, 200, 429]);
    /// // Whole seconds to the next window, rounded up.
    /// let retry_after: u64 = last["retry-after"].to_str().unwrap().parse().unwrap();
    /// assert!((1..=60).contains(&retry_after));
    /// assert_eq!(last["x-ratelimit-remaining"], "0");
    /// # }
    /// ```
    pub fn quota(mut self, limit: u32, period: Duration) -> Self {
        self.quota = Some((limit, period));
        self
    }

    /// The quota header style of quota mode; [`QuotaHeaders::XRateLimit`] by default.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use std::time::Duration;
    /// use calm_mock::{MockApi, QuotaHeaders};
    ///
    /// let api = MockApi::builder()
    ///     .quota(3, Duration::from_secs(1))
    ///     .quota_headers(QuotaHeaders::Ietf)
    ///     .start()
    ///     .await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// let res = client.get(api.url("/").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["ratelimit-policy"], r#""default";q=3;w=1"#);
    /// let ratelimit = res.headers()["ratelimit"].to_str().unwrap();
    /// assert!(ratelimit.starts_with(r#""default";r=2;t="#), "{ratelimit}");
    /// # }
    /// ```
    pub fn quota_headers(mut self, style: QuotaHeaders) -> Self {
        self.quota_headers = style;
        self
    }

    /// How many requests [`MockApi::requests`] keeps: the most recent `limit`;
    /// [`DEFAULT_LOG_LIMIT`](crate::DEFAULT_LOG_LIMIT) (10,000) by default. `0` keeps none.
    ///
    /// [`MockApi::request_count`] counts every request whatever the limit. An entry takes
    /// about 150 bytes for a small request, plus its body when
    /// [`record_bodies`](Self::record_bodies) is on, so the default log of a run of any
    /// length stays under a few MB unless its bodies are big.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::MockApi;
    ///
    /// let api = MockApi::builder().log_limit(2).start().await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// for path in ["/a", "/b", "/c"] {
    ///     client.get(api.url(path).parse().unwrap()).await.unwrap();
    /// }
    /// assert_eq!(api.request_count(), 3); // every request
    /// let kept: Vec<_> = api.requests().iter().map(|r| r.uri.path().to_owned()).collect();
    /// assert_eq!(kept, ["/b", "/c"]); // the most recent two
    /// # }
    /// ```
    pub fn log_limit(mut self, limit: usize) -> Self {
        self.log_limit = limit;
        self
    }

    /// Whether [`MockApi::requests`] keeps request bodies; on by default.
    ///
    /// Turn it off for long runs with big bodies: the log then holds heads only (about 150
    /// bytes a request), and [`RecordedRequest::body`] is always empty. Bodies are read
    /// either way.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::MockApi;
    ///
    /// let api = MockApi::builder().record_bodies(false).start().await;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let req = http::Request::post(api.url("/upload"))
    ///     .body(String::from("a big payload"))
    ///     .unwrap();
    /// client.request(req).await.unwrap();
    ///
    /// let r = &api.requests()[0];
    /// assert_eq!(r.headers["content-length"], "13"); // the head is kept
    /// assert!(r.body.is_empty()); // the body is not
    /// # }
    /// ```
    pub fn record_bodies(mut self, record: bool) -> Self {
        self.record_bodies = record;
        self
    }

    /// Starts the mock on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If the mock cannot start (see [`try_start`](Self::try_start)), or when called outside
    /// a tokio runtime.
    ///
    /// # Examples
    ///
    /// See [`MockApi::builder`] and the type's example.
    pub async fn start(self) -> MockApi {
        match self.try_start().await {
            Ok(api) => api,
            Err(e) => panic!("calm-mock: cannot start the mock API: {e}"),
        }
    }

    /// Starts the mock on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// If no port on `127.0.0.1` can be bound, or (TLS mode) the certificate cannot be made.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let api = calm_mock::MockApiBuilder::new().tls().try_start().await?;
    /// assert!(api.root_certificate_der().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn try_start(self) -> io::Result<MockApi> {
        let (acceptor, root_cert) = if self.tls {
            let (acceptor, cert) = crate::tls::acceptor()?;
            (Some(acceptor), Some(cert))
        } else {
            (None, None)
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let scheme = if self.tls { "https" } else { "http" };
        let started = Instant::now();
        let shared = Arc::new(Shared {
            scripts: Mutex::new(HashMap::new()),
            log: Mutex::new(Log::new(self.log_limit, self.record_bodies)),
            connections: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            quota: self
                .quota
                .map(|(limit, period)| QuotaState::new(limit, period, self.quota_headers, started)),
        });
        let (shutdown, shutdown_rx) = watch::channel(());
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            acceptor,
            shutdown_rx,
        ));
        Ok(MockApi {
            addr,
            base_url: format!("{scheme}://{addr}/"),
            root_cert,
            shared,
            accept,
            _shutdown: shutdown,
        })
    }
}

/// State shared by the handle, the accept loop and every connection.
#[derive(Debug)]
struct Shared {
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// NOTE: locked before `scripts` and the quota, never after: recording a request and
    /// using up its reply happen under this one lock, so no one sees one without the other.
    log: Mutex<Log>,
    connections: AtomicUsize,
    rejected: AtomicUsize,
    quota: Option<QuotaState>,
}

impl Shared {
    fn next_reply(&self, path: &str) -> Reply {
        let mut scripts = lock(&self.scripts);
        match scripts.get_mut(path) {
            Some(replies) if replies.len() > 1 => replies.pop_front().unwrap_or_default(),
            Some(replies) => replies.front().cloned().unwrap_or_default(),
            None => Reply::ok(),
        }
    }
}

/// The body of a recorded request as it is read; it lands in the log when reading ends, or
/// with what arrived of it when the exchange is dropped half-way.
struct BodyRecord<'a> {
    shared: &'a Shared,
    seq: u64,
    /// `None` when bodies are not recorded.
    data: Option<BytesMut>,
}

impl Drop for BodyRecord<'_> {
    fn drop(&mut self) {
        if let Some(data) = &self.data {
            lock(&self.shared.log).fill_body(self.seq, data);
        }
    }
}

/// Locks, ignoring poisoning: the data stays consistent at every await-free step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<()>,
) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // NOTE: e.g. out of file descriptors; back off instead of spinning.
                tracing::debug!(error = %e, "calm-mock: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_tcp(
            tcp,
            Arc::clone(&shared),
            tls.clone(),
            shutdown.clone(),
        ));
    }
}

async fn serve_tcp(
    tcp: TcpStream,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<()>,
) {
    match tls {
        None => serve_io(TokioIo::new(tcp), shared, shutdown).await,
        Some(acceptor) => {
            let stream = tokio::select! {
                r = acceptor.accept(tcp) => match r {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::debug!(error = %e, "calm-mock: TLS handshake failed");
                        return;
                    }
                },
                _ = shutdown.changed() => return,
            };
            serve_io(TokioIo::new(stream), shared, shutdown).await;
        }
    }
}

async fn serve_io<I>(io: I, shared: Arc<Shared>, mut shutdown: watch::Receiver<()>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let close = Arc::new(Notify::new());
    let service = MockService {
        shared,
        close: Arc::clone(&close),
        shutdown: shutdown.clone(),
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // NOTE: hyper's default 30 s header-read timeout also runs while a keep-alive connection
    // idles, and fires at once under paused tokio time; the mock keeps connections until the
    // client or the drop ends them, so connection counts stay predictable.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(io, service);
    // NOTE: dropping the connection future closes the socket: that is how `Reply::close`
    // hangs up without answering, and how dropping the MockApi ends open connections.
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "calm-mock: connection error");
            }
        }
        _ = close.notified() => {}
        _ = shutdown.changed() => {}
    }
}

/// The per-connection service.
#[derive(Clone)]
struct MockService {
    shared: Arc<Shared>,
    close: Arc<Notify>,
    shutdown: watch::Receiver<()>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = io::Result<Response<MockBody>>> + Send>>;

impl Service<Request<Incoming>> for MockService {
    type Response = Response<MockBody>;
    type Error = io::Error;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        // NOTE: arrival order, the log entry, quota admission and the scripted reply are all
        // decided here, synchronously, when the request head arrives: hyper may drop the
        // future below unpolled (a client that hangs up at once), and the request must still
        // be in the log if it took a quota place or a reply.
        let at = Instant::now();
        let (seq, admission, reply, bodies) = {
            let mut log = lock(&self.shared.log);
            let seq = log.record(&req, at);
            let admission = self.shared.quota.as_ref().map(|q| q.admit(at));
            let reply = match admission {
                Some(a) if !a.allowed => {
                    self.shared.rejected.fetch_add(1, Ordering::SeqCst);
                    None
                }
                _ => Some(self.shared.next_reply(req.uri().path())),
            };
            (seq, admission, reply, log.records_bodies())
        };
        let shared = Arc::clone(&self.shared);
        let close = Arc::clone(&self.close);
        let mut shutdown = self.shutdown.clone();
        Box::pin(async move {
            tokio::select! {
                r = answer(&shared, req, seq, bodies, admission, reply, &close) => r,
                // NOTE: on HTTP/2 this future runs in its own task, so it must end by itself
                // when the server stops.
                _ = shutdown.changed() => Err(io::Error::other("calm-mock: server stopped")),
            }
        })
    }
}

async fn answer(
    shared: &Shared,
    req: Request<Incoming>,
    seq: u64,
    bodies: bool,
    admission: Option<Admission>,
    reply: Option<Reply>,
    close: &Notify,
) -> io::Result<Response<MockBody>> {
    let encoding = reply
        .as_ref()
        .and_then(|r| r.encode)
        .and_then(|encode| encode.choose(req.headers()));
    let mut incoming = req.into_body();
    let mut body = BodyRecord {
        shared,
        seq,
        data: bodies.then(BytesMut::new),
    };
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(frame) => {
                if let (Some(data), Some(body)) = (frame.data_ref(), body.data.as_mut()) {
                    body.extend_from_slice(data);
                }
            }
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    drop(body);

    let Some(reply) = reply else {
        let mut response =
            Response::new(MockBody::full(Bytes::from_static(b"too many requests\n")));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let (Some(quota), Some(admission)) = (&shared.quota, &admission) {
            quota.apply(admission, response.headers_mut());
        }
        return Ok(response);
    };

    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    match reply.action {
        Action::Respond => {}
        Action::Close => {
            close.notify_one();
            return std::future::pending().await;
        }
        Action::Stall => return std::future::pending().await,
    }
    let mut headers = reply.headers;
    let data = match encoding {
        Some(encoding) if !reply.body.is_empty() => {
            headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static(encoding.name()),
            );
            encoding.encode(&reply.body)?
        }
        _ => reply.body,
    };
    let body = match reply.slow {
        Some((chunks, every)) => MockBody::slow(data, chunks, every),
        None => MockBody::full(data),
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    *response.headers_mut() = headers;
    if let (Some(quota), Some(admission)) = (&shared.quota, &admission) {
        quota.apply(admission, response.headers_mut());
    }
    Ok(response)
}
