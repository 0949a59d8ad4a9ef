//! What the mock answers: [`Reply`].

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, StatusCode};

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
/// use std::time::Duration;
/// use calm_mock::Reply;
///
/// let busy = Reply::status(503).header("retry-after", "1").body("try again");
/// let slow = Reply::ok().delay(Duration::from_millis(50));
/// let trickle = Reply::ok().body("abcdef").slow_body(3, Duration::from_millis(10));
/// let moved = Reply::redirect(307, "/v2/items");
/// # let _ = (busy, slow, trickle, moved);
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
}

impl Reply {
    /// A reply with the given status, no extra headers and an empty body.
    ///
    /// ```
    /// let teapot = calm_mock::Reply::new(http::StatusCode::IM_A_TEAPOT);
    /// # let _ = teapot;
    /// ```
    pub fn new(status: StatusCode) -> Self {
        Self {
            action: Action::Respond,
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            delay: None,
            slow: None,
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
    /// let unavailable = calm_mock::Reply::status(503);
    /// # let _ = unavailable;
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
    /// let ok = calm_mock::Reply::ok();
    /// # let _ = ok;
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
    /// let moved = calm_mock::Reply::redirect(308, "/v2/");
    /// # let _ = moved;
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
    /// let hang_up = calm_mock::Reply::close();
    /// # let _ = hang_up;
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
    /// let black_hole = calm_mock::Reply::stall();
    /// # let _ = black_hole;
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
    /// let limited = calm_mock::Reply::status(429)
    ///     .header("retry-after", 2)
    ///     .header(http::header::CONTENT_TYPE, "text/plain");
    /// # let _ = limited;
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
    /// let json = calm_mock::Reply::ok()
    ///     .header("content-type", "application/json")
    ///     .body(r#"{"id":1}"#);
    /// # let _ = json;
    /// ```
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits `delay` after the request was read before answering (or, for
    /// [`close`](Reply::close), before closing).
    ///
    /// ```
    /// use std::time::Duration;
    /// let late = calm_mock::Reply::ok().delay(Duration::from_millis(200));
    /// # let _ = late;
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
    /// use std::time::Duration;
    /// let trickle = calm_mock::Reply::ok()
    ///     .body(vec![b'x'; 1000])
    ///     .slow_body(10, Duration::from_millis(20));
    /// # let _ = trickle;
    /// ```
    pub fn slow_body(mut self, chunks: usize, every: Duration) -> Self {
        self.slow = Some((chunks.max(1), every));
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
            .finish()
    }
}
