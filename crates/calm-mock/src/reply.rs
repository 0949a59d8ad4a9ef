//! What the mock answers: [`Reply`].

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, StatusCode};

use crate::encoding::{Encode, Encoding};

/// What the server does with a request, apart from the response it may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send the response.
    Respond,
    /// Read the request, then drop the connection without a response.
    Close,
    /// Read the request, then never answer.
    Stall,
}

/// One scripted answer of a [`MockApi`](crate::MockApi).
///
/// A reply is a status, headers and a body, optionally sent late ([`delay`](Reply::delay)) or
/// slowly ([`slow_body`](Reply::slow_body)); or a fault: [`close`](Reply::close) drops the
/// connection without answering and [`stall`](Reply::stall) never answers.
///
/// Replies are built by value and are cheap to clone (the body is [`Bytes`]).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use http_body_util::BodyExt;
/// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use calm_mock::{MockApi, Reply};
///
/// let api = MockApi::start().await;
/// let busy = Reply::status(503).header("retry-after", "1").body("try again");
/// api.script("/v1/items", [busy, Reply::ok()]);
/// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
/// let uri: http::Uri = api.url("/v1/items").parse().unwrap();
///
/// let res = client.get(uri.clone()).await.unwrap();
/// assert_eq!(res.status(), 503);
/// assert_eq!(res.headers()["retry-after"], "1");
/// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "try again");
/// assert_eq!(client.get(uri).await.unwrap().status(), 200);
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Reply {
    pub(crate) action: Action,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) delay: Option<Duration>,
    pub(crate) slow: Option<(usize, Duration)>,
    pub(crate) encode: Option<Encode>,
}

impl Reply {
    /// A reply with the given status, no extra headers and an empty body.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/tea", [Reply::new(http::StatusCode::IM_A_TEAPOT)]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/tea").parse().unwrap();
    ///
    /// let res = client.get(uri).await.unwrap();
    /// assert_eq!(res.status(), http::StatusCode::IM_A_TEAPOT);
    /// assert!(res.into_body().collect().await.unwrap().to_bytes().is_empty());
    /// # }
    /// ```
    pub fn new(status: StatusCode) -> Self {
        Self {
            action: Action::Respond,
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            delay: None,
            slow: None,
            encode: None,
        }
    }

    /// A reply with the given numeric status and an empty body.
    ///
    /// # Panics
    ///
    /// If `code` is not a valid HTTP status (outside `100..=999`): a mistake in the test
    /// script, reported where it is made.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/down", [Reply::status(503)]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/down").parse().unwrap();
    ///
    /// assert_eq!(client.get(uri).await.unwrap().status(), 503);
    ///
    /// // Not a status code: the script is wrong, and says so at once.
    /// assert!(std::panic::catch_unwind(|| Reply::status(42)).is_err());
    /// # }
    /// ```
    pub fn status(code: u16) -> Self {
        match StatusCode::from_u16(code) {
            Ok(status) => Self::new(status),
            Err(_) => panic!("calm-mock: {code} is not a valid HTTP status code"),
        }
    }

    /// `200 OK` with the body `ok`: what unscripted paths answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/scripted", [Reply::ok()]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// // A scripted `ok()` answers just like a path that was never scripted.
    /// for path in ["/scripted", "/never-scripted"] {
    ///     let res = client.get(api.url(path).parse().unwrap()).await.unwrap();
    ///     assert_eq!(res.status(), 200);
    ///     assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    /// }
    /// # }
    /// ```
    pub fn ok() -> Self {
        Self::new(StatusCode::OK).body("ok")
    }

    /// A redirect: the given status (301, 302, 303, 307, 308, …) with a `Location` header.
    ///
    /// `location` may be a path on the mock (`/v2/x`) or an absolute URL, for example another
    /// mock's [`url`](crate::MockApi::url).
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status or `location` is not a valid header value.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/v1/items", [Reply::redirect(308, "/v2/items")]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/v1/items").parse().unwrap();
    ///
    /// // hyper-util's client does not follow redirects: the 308 itself arrives.
    /// let res = client.get(uri).await.unwrap();
    /// assert_eq!(res.status(), 308);
    /// assert_eq!(res.headers()["location"], "/v2/items");
    /// # }
    /// ```
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::status(status).header(LOCATION, location)
    }

    /// Fault: read the whole request, then close the connection without sending any
    /// response.
    ///
    /// The client sees a connection error (for HTTP/1.1 typically "connection closed before
    /// message completed"). On an HTTP/2 connection every stream of that connection fails.
    /// [`delay`](Reply::delay) postpones the close; status, headers and body are ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/bye", [Reply::close(), Reply::ok()]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/bye").parse().unwrap();
    ///
    /// let req = http::Request::post(uri.clone()).body(String::from("payload")).unwrap();
    /// let err = client.request(req).await.unwrap_err();
    /// assert!(!err.is_connect()); // connected and sent, then hung up on
    /// assert_eq!(api.requests()[0].body, "payload"); // read before the hang-up
    ///
    /// // The script moves on.
    /// assert_eq!(client.get(uri).await.unwrap().status(), 200);
    /// # }
    /// ```
    pub fn close() -> Self {
        Self {
            action: Action::Close,
            ..Self::new(StatusCode::OK)
        }
    }

    /// Fault: read the whole request, then never answer, until the client gives up or the
    /// [`MockApi`](crate::MockApi) is dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/hang", [Reply::stall()]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri: http::Uri = api.url("/hang").parse().unwrap();
    ///
    /// use tokio::time::timeout;
    /// let patience = std::time::Duration::from_millis(200);
    /// assert!(timeout(patience, client.get(uri)).await.is_err(), "no answer, ever");
    /// # }
    /// ```
    pub fn stall() -> Self {
        Self {
            action: Action::Stall,
            ..Self::new(StatusCode::OK)
        }
    }

    /// Adds a response header. Several calls with the same name send several values.
    ///
    /// Anything convertible to [`HeaderName`] / [`HeaderValue`] works: `&str`, `String`,
    /// the `http::header` constants, integers for values.
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not a valid header name or value: a mistake in the test script,
    /// reported where it is made.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let limited = Reply::status(429)
    ///     .header("retry-after", 2)
    ///     .header(http::header::CACHE_CONTROL, "no-store")
    ///     .header(http::header::CACHE_CONTROL, "private");
    /// let api = MockApi::start().await;
    /// api.script("/limited", [limited]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// let res = client.get(api.url("/limited").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["retry-after"], "2");
    /// let cache: Vec<_> = res.headers().get_all("cache-control").iter().collect();
    /// assert_eq!(cache, ["no-store", "private"]);
    /// # }
    /// ```
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: fmt::Display,
        V: TryInto<HeaderValue>,
        V::Error: fmt::Display,
    {
        let name = match name.try_into() {
            Ok(name) => name,
            Err(e) => panic!("calm-mock: invalid header name: {e}"),
        };
        let value = match value.try_into() {
            Ok(value) => value,
            Err(e) => panic!("calm-mock: invalid value for header {name}: {e}"),
        };
        self.headers.append(name, value);
        self
    }

    /// Sets the response body (replacing any previous one). `Content-Length` is set from it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let json = Reply::ok().header("content-type", "application/json").body(r#"{"id":1}"#);
    /// let api = MockApi::start().await;
    /// api.script("/v1/items/1", [json]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// let res = client.get(api.url("/v1/items/1").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["content-length"], "8");
    /// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), r#"{"id":1}"#);
    /// # }
    /// ```
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits `delay` after the request was read before answering (or, for
    /// [`close`](Reply::close), before closing).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use std::time::Duration;
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/slow", [Reply::ok().delay(Duration::from_millis(50))]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// let res = client.get(api.url("/slow").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// // At least the delay passed between the request's arrival and the answer.
    /// assert!(api.requests()[0].at.elapsed() >= Duration::from_millis(50));
    /// # }
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sends the head at once, then the body in `chunks` pieces of about equal size, waiting
    /// `every` before each piece: the body takes `chunks × every` to arrive. `chunks == 0`
    /// counts as 1. `Content-Length` is still sent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use std::time::Duration;
    /// use calm_mock::{MockApi, Reply};
    ///
    /// let trickle = Reply::ok().body(vec![b'x'; 1000]).slow_body(5, Duration::from_millis(10));
    /// let api = MockApi::start().await;
    /// api.script("/download", [trickle]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// let res = client.get(api.url("/download").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["content-length"], "1000");
    /// let body = res.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body.len(), 1000); // whole, in the end
    /// // Five pieces, 10 ms apart: at least 50 ms after the request arrived.
    /// assert!(api.requests()[0].at.elapsed() >= Duration::from_millis(50));
    /// # }
    /// ```
    pub fn slow_body(mut self, chunks: usize, every: Duration) -> Self {
        self.slow = Some((chunks.max(1), every));
        self
    }

    /// Sends the body compressed with `encoding`, with `Content-Encoding` naming it (replacing
    /// any scripted one), whatever the request's `Accept-Encoding` says: a server that
    /// compresses regardless. `Content-Length` is the compressed length, and
    /// [`slow_body`](Reply::slow_body) trickles the compressed bytes. An empty body is sent
    /// empty, without `Content-Encoding`.
    ///
    /// The body is compressed when the reply is sent, so `body` may come before or after.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{Encoding, MockApi, Reply};
    /// use std::io::Read as _;
    ///
    /// let api = MockApi::start().await;
    /// api.script("/v1/items", [Reply::ok().body(r#"[{"id":1}]"#).encoded(Encoding::Gzip)]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    ///
    /// // hyper-util's client decodes nothing: the gzip bytes arrive as they were sent.
    /// let res = client.get(api.url("/v1/items").parse().unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["content-encoding"], "gzip");
    /// let gzipped = res.into_body().collect().await.unwrap().to_bytes();
    /// let mut plain = String::new();
    /// flate2::read::GzDecoder::new(&gzipped[..]).read_to_string(&mut plain).unwrap();
    /// assert_eq!(plain, r#"[{"id":1}]"#);
    /// # }
    /// ```
    pub fn encoded(mut self, encoding: Encoding) -> Self {
        self.encode = Some(Encode::Always(encoding));
        self
    }

    /// Like [`encoded`](Reply::encoded), but only for a request whose `Accept-Encoding`
    /// accepts `encoding` (it is listed, or `*` is, without `q=0`); any other request gets
    /// the plain body, without `Content-Encoding`: a server that negotiates.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use http_body_util::BodyExt;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// use calm_mock::{Encoding, MockApi, Reply};
    ///
    /// let api = MockApi::start().await;
    /// api.script("/v1/items", [Reply::ok().body("[]").encoded_if_accepted(Encoding::Brotli)]);
    /// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    /// let uri = api.url("/v1/items");
    ///
    /// let plain = client.get(uri.parse().unwrap()).await.unwrap();
    /// assert!(plain.headers().get("content-encoding").is_none());
    /// assert_eq!(plain.into_body().collect().await.unwrap().to_bytes(), "[]");
    ///
    /// let req = http::Request::get(&uri).header("accept-encoding", "gzip, br").body(String::new());
    /// let compressed = client.request(req.unwrap()).await.unwrap();
    /// assert_eq!(compressed.headers()["content-encoding"], "br");
    /// # }
    /// ```
    pub fn encoded_if_accepted(mut self, encoding: Encoding) -> Self {
        self.encode = Some(Encode::IfAccepted(encoding));
        self
    }
}

impl Default for Reply {
    /// [`Reply::ok`].
    fn default() -> Self {
        Self::ok()
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Reply");
        match self.action {
            Action::Respond => d
                .field("status", &self.status)
                .field("headers", &self.headers)
                .field("body_len", &self.body.len()),
            Action::Close => d.field("fault", &"close"),
            Action::Stall => d.field("fault", &"stall"),
        };
        d.field("delay", &self.delay)
            .field("slow_body", &self.slow)
            .field("encode", &self.encode)
            .finish()
    }
}
