//! Server hints: what a response says about the server's quota.
//!
//! After each response, [`RateLimit`](crate::RateLimit) reads these header families
//! (unless [`server_hints(false)`](crate::RateLimitLayer::server_hints)):
//!
//! | family | example | read on |
//! |---|---|---|
//! | `Retry-After` | `Retry-After: 30`, `Retry-After: Tue, 14 Nov 2023 22:13:50 GMT` | 429, 503, 403 |
//! | IETF draft | `RateLimit: "default";r=0;t=12`, `RateLimit-Policy: "default";q=100;w=60` | any |
//! | older draft | `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` | any |
//! | vendor | `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (and `-Requests` / `-Tokens`) | any |
//!
//! A reset may be delta-seconds, epoch seconds (values of 10⁹ and more: GitHub) or a duration
//! string such as `12ms`, `1.5s`, `6m0s` (OpenAI). A 429, a 403 with nothing remaining
//! (GitHub), and a 403 or 503 with `Retry-After` count as throttling.
//!
//! The resulting [`ServerHint::pause`] is how long *every* caller of the limiter must wait:
//! `Retry-After` if the server sent one, else the reset when nothing remains (or the response
//! was a throttle). The layer caps it at its `max_pause`.
//!
//! Malformed values (`Retry-After: soon`, `-5`, numbers that overflow or name more than a
//! year, non-ASCII bytes) are ignored with a `tracing` debug event; reading never panics and
//! never fails a request.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, HeaderValue, StatusCode};
//! use calm_ratelimit::hints;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("ratelimit", HeaderValue::from_static(r#""default";r=0;t=12"#));
//! let hint = hints::read(&headers, StatusCode::OK, SystemTime::now()).unwrap();
//! assert_eq!(hint.remaining, Some(0));
//! assert_eq!(hint.pause(), Some(Duration::from_secs(12)));
//! ```

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

mod ietf;
mod ratelimit_fields;
mod retry_after;
mod values;
mod x_ratelimit;

/// Marks a response (in its extensions) as coming from another server than the one the
/// limiter paces, so its hints are not read: a redirect follower below the layer puts it on
/// the answer of a hop to another origin (a presigned download URL's 503 says nothing about
/// the API's quota). calm's `Client` does.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use calm_ratelimit::{hints::OtherOrigin, Quota, RateLimitLayer};
/// use http::{Response, StatusCode};
/// use tower::{Layer, ServiceExt};
///
/// // The answer, a 429 with `Retry-After: 30`, came from another server.
/// let backend = tower::service_fn(|_req: http::Request<()>| async {
///     let mut res = Response::new(());
///     *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
///     res.headers_mut().insert("retry-after", "30".parse().unwrap());
///     res.extensions_mut().insert(OtherOrigin);
///     Ok::<_, std::convert::Infallible>(res)
/// });
/// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()))
///     .server_hints(true);
/// layer.layer(backend).oneshot(http::Request::new(())).await.unwrap();
/// assert_eq!(layer.limiter().snapshot().paused_until, None);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OtherOrigin;

/// What one response said about the server's quota: the result of [`read`].
///
/// # Examples
///
/// GitHub's answer once the quota is spent: a 403 with nothing remaining and an epoch reset.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use calm_ratelimit::hints;
/// use http::{HeaderMap, StatusCode};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-limit", "5000".parse().unwrap());
/// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// headers.insert("x-ratelimit-reset", "1700000060".parse().unwrap());
///
/// let hint = hints::read(&headers, StatusCode::FORBIDDEN, now).unwrap();
/// assert!(hint.throttled);
/// assert_eq!((hint.limit, hint.remaining), (Some(5000), Some(0)));
/// assert_eq!(hint.reset, Some(Duration::from_secs(60)));
/// assert_eq!(hint.pause(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerHint {
    /// The response was a throttle: a 429, a 403 with nothing remaining, or a 403 or 503 with
    /// `Retry-After`.
    pub throttled: bool,
    /// `Retry-After`, as a wait from the moment the response was read.
    pub retry_after: Option<Duration>,
    /// The server's quota (`…-Limit`, `q`).
    pub limit: Option<u64>,
    /// What remains of the server's quota (`…-Remaining`, `r`).
    pub remaining: Option<u64>,
    /// When the server's quota resets, as a wait from the moment the response was read.
    pub reset: Option<Duration>,
    /// The field `remaining` and `reset` were read from.
    family: Option<&'static str>,
}

impl ServerHint {
    /// How long every caller should pause, if the server said its quota is spent:
    /// `Retry-After` when present, else the reset when nothing remains or the response was a
    /// throttle.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_ratelimit::hints::ServerHint;
    ///
    /// let mut hint = ServerHint::default();
    /// hint.remaining = Some(3);
    /// hint.reset = Some(Duration::from_secs(20));
    /// assert_eq!(hint.pause(), None); // quota left: nobody waits
    ///
    /// hint.remaining = Some(0);
    /// assert_eq!(hint.pause(), Some(Duration::from_secs(20)));
    ///
    /// hint.retry_after = Some(Duration::from_secs(5));
    /// assert_eq!(hint.pause(), Some(Duration::from_secs(5))); // `Retry-After` wins
    /// ```
    #[must_use]
    pub fn pause(&self) -> Option<Duration> {
        if self.retry_after.is_some() {
            return self.retry_after;
        }
        if self.remaining == Some(0) || self.throttled {
            return self.reset;
        }
        None
    }

    /// The name of the header a [`pause`](Self::pause) comes from: `retry-after`, `ratelimit`
    /// (the IETF field), `ratelimit-reset`, `x-ratelimit-reset` (or its `-requests` /
    /// `-tokens` variant). `None` when there is no pause.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use calm_ratelimit::hints;
    /// use http::{HeaderMap, StatusCode};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
    /// headers.insert("x-ratelimit-reset", "30".parse().unwrap());
    /// let hint = hints::read(&headers, StatusCode::OK, SystemTime::now()).unwrap();
    /// assert_eq!(hint.source(), Some("x-ratelimit-reset"));
    ///
    /// headers.insert("retry-after", "5".parse().unwrap());
    /// let hint = hints::read(&headers, StatusCode::TOO_MANY_REQUESTS, SystemTime::now()).unwrap();
    /// assert_eq!(hint.source(), Some("retry-after"));
    /// ```
    #[must_use]
    pub fn source(&self) -> Option<&'static str> {
        self.pause()?;
        if self.retry_after.is_some() {
            return Some("retry-after");
        }
        self.family
    }
}

/// Reads every hint family from a response's status and headers.
///
/// `now` is the wall clock, used for HTTP-dates and epoch resets. Returns `None` when the
/// response says nothing about the quota. Never panics, whatever the bytes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use calm_ratelimit::hints;
/// use http::{HeaderMap, StatusCode};
///
/// let now = httpdate::parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "Tue, 14 Nov 2023 22:13:50 GMT".parse().unwrap());
///
/// let hint = hints::read(&headers, StatusCode::TOO_MANY_REQUESTS, now).unwrap();
/// assert!(hint.throttled);
/// assert_eq!(hint.pause(), Some(Duration::from_secs(30)));
///
/// // On a 200, `Retry-After` is about something else.
/// assert_eq!(hints::read(&headers, StatusCode::OK, now), None);
///
/// // A malformed value is ignored: still a throttle, but no pause.
/// headers.insert("retry-after", "soon".parse().unwrap());
/// let hint = hints::read(&headers, StatusCode::TOO_MANY_REQUESTS, now).unwrap();
/// assert!(hint.throttled);
/// assert_eq!(hint.pause(), None);
/// ```
#[must_use]
pub fn read(headers: &HeaderMap, status: StatusCode, now: SystemTime) -> Option<ServerHint> {
    let throttle_status = status == StatusCode::TOO_MANY_REQUESTS;
    if headers.is_empty() && !throttle_status {
        return None;
    }
    let mut hint = [ietf::parse, ratelimit_fields::parse, x_ratelimit::parse]
        .into_iter()
        .filter_map(|family| family(headers, status, now))
        .reduce(|first, other| {
            if first.remaining.is_some() {
                first
            } else {
                other.or(first)
            }
        })
        .unwrap_or_default();
    if let Some(retry) = retry_after::parse(headers, status, now) {
        hint.retry_after = retry.retry_after;
        hint.throttled = true;
    }
    if throttle_status || (status == StatusCode::FORBIDDEN && hint.remaining == Some(0)) {
        hint.throttled = true;
    }
    (hint != ServerHint::default()).then_some(hint)
}

/// Whether `headers` has a field any parser here reads: `Retry-After`, or a name starting
/// with `ratelimit` or `x-ratelimit`. A cheap test that lets the limiter skip [`read`] for
/// ordinary responses; `read` gives the same answer without it.
///
/// ```
/// use calm_ratelimit::hints::may_carry_hint;
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("content-type", "application/json".parse().unwrap());
/// assert!(!may_carry_hint(&headers));
/// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// assert!(may_carry_hint(&headers));
/// ```
pub fn may_carry_hint(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name == "retry-after" || name.starts_with("ratelimit") || name.starts_with("x-ratelimit")
    })
}

impl ServerHint {
    /// Fields of `self`, completed with `other`'s where `self` has none.
    fn or(self, other: ServerHint) -> ServerHint {
        ServerHint {
            throttled: self.throttled || other.throttled,
            retry_after: self.retry_after.or(other.retry_after),
            limit: self.limit.or(other.limit),
            remaining: self.remaining.or(other.remaining),
            reset: self.reset.or(other.reset),
            family: self.family.or(other.family),
        }
    }
}

/// The wall clock hints are read against (HTTP-dates and epoch resets name wall-clock times).
///
/// [`WallClock::system`] is the default. [`WallClock::starting_at`] reads a chosen time now and
/// then advances with tokio's clock, so tests on paused time get exact answers.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::{Duration, SystemTime};
/// use calm_ratelimit::hints::WallClock;
///
/// let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let clock = WallClock::starting_at(start);
/// tokio::time::sleep(Duration::from_secs(5)).await;
/// assert_eq!(clock.now(), start + Duration::from_secs(5));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock(Kind);

#[derive(Clone, Copy, Debug, Default)]
enum Kind {
    #[default]
    System,
    Anchored {
        wall: SystemTime,
        at: Instant,
    },
}

impl WallClock {
    /// The system's clock (`SystemTime::now`); the default.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use calm_ratelimit::hints::WallClock;
    ///
    /// let before = SystemTime::now();
    /// assert!(WallClock::system().now() >= before);
    /// ```
    #[must_use]
    pub fn system() -> WallClock {
        WallClock(Kind::System)
    }

    /// A clock that reads `wall` now and advances with tokio's clock from here on. See the
    /// type's example.
    #[must_use]
    pub fn starting_at(wall: SystemTime) -> WallClock {
        WallClock(Kind::Anchored {
            wall,
            at: Instant::now(),
        })
    }

    /// The current wall-clock time. See the type's example.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        match self.0 {
            Kind::System => SystemTime::now(),
            Kind::Anchored { wall, at } => wall + at.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(*k, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn retry_after_on_429_pauses() {
        let h = read(
            &headers(&[("retry-after", "30")]),
            StatusCode::TOO_MANY_REQUESTS,
            now(),
        )
        .unwrap();
        assert!(h.throttled);
        assert_eq!(h.pause(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn remaining_left_does_not_pause() {
        let h = read(
            &headers(&[("x-ratelimit-remaining", "4"), ("x-ratelimit-reset", "9")]),
            StatusCode::OK,
            now(),
        )
        .unwrap();
        assert_eq!(h.pause(), None);
        assert_eq!(h.remaining, Some(4));
    }

    #[test]
    fn github_403_is_a_throttle() {
        let h = read(
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000060"),
            ]),
            StatusCode::FORBIDDEN,
            now(),
        )
        .unwrap();
        assert!(h.throttled);
        assert_eq!(h.pause(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_bare_429_is_a_throttle_without_a_pause() {
        let h = read(&HeaderMap::new(), StatusCode::TOO_MANY_REQUESTS, now()).unwrap();
        assert!(h.throttled);
        assert_eq!(h.pause(), None);
    }

    #[test]
    fn ietf_wins_over_vendor_fields() {
        let h = read(
            &headers(&[
                ("ratelimit", r#""default";r=0;t=12"#),
                ("x-ratelimit-remaining", "5"),
                ("x-ratelimit-limit", "50"),
            ]),
            StatusCode::OK,
            now(),
        )
        .unwrap();
        assert_eq!((h.remaining, h.limit), (Some(0), None));
        assert_eq!(h.pause(), Some(Duration::from_secs(12)));
    }

    #[test]
    fn unrelated_headers_say_nothing() {
        let h = headers(&[("content-type", "text/plain"), ("retry-after", "30")]);
        assert_eq!(read(&h, StatusCode::OK, now()), None);
    }

    const NAMES: [&str; 14] = [
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "x-ratelimit-limit-tokens",
    ];

    fn arbitrary_headers() -> impl Strategy<Value = HeaderMap> {
        let value = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            "[0-9a-z\\.;=,\" -]{0,30}".prop_map(String::into_bytes),
            // Structured-field shapes: items, parameters, booleans, byte sequences.
            "(\"[a-z]{0,3}\"|[a-z]{1,3})(;[a-z*]{1,2}(=(\\?[01]|[0-9]{1,4}|:[a-zA-Z0-9+/=]{0,4}:|\"[^\"]{0,3}\"))?){0,4}(, ?[a-z=0-9;?]{0,8}){0,2}"
                .prop_map(String::into_bytes),
        ];
        proptest::collection::vec((0..NAMES.len(), value), 0..6).prop_map(|pairs| {
            let mut headers = HeaderMap::new();
            for (name, bytes) in pairs {
                if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                    headers.append(NAMES[name], v);
                }
            }
            headers
        })
    }

    fn status() -> impl Strategy<Value = StatusCode> {
        prop_oneof![
            Just(StatusCode::OK),
            Just(StatusCode::FORBIDDEN),
            Just(StatusCode::TOO_MANY_REQUESTS),
            Just(StatusCode::SERVICE_UNAVAILABLE),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_parser_panics_on_arbitrary_bytes(
            headers in arbitrary_headers(),
            status in status(),
            secs in any::<u64>(),
        ) {
            let now = UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH);
            let _ = retry_after::parse(&headers, status, now);
            let _ = ietf::parse(&headers, status, now);
            let _ = ratelimit_fields::parse(&headers, status, now);
            let _ = x_ratelimit::parse(&headers, status, now);
            if let Some(hint) = read(&headers, status, now) {
                if let Some(pause) = hint.pause() {
                    prop_assert!(pause <= values::MAX_HINT);
                }
                // The limiter's fast path must never skip a response `read` finds a hint in.
                prop_assert!(status == StatusCode::TOO_MANY_REQUESTS || may_carry_hint(&headers));
            }
        }

        #[test]
        fn no_value_grammar_panics(text in "\\PC{0,30}", secs in any::<u64>()) {
            let now = UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH);
            let _ = values::integer(&text);
            let _ = values::seconds(&text);
            let _ = values::whole_seconds(&text);
            let _ = values::go_duration(&text);
            let _ = values::reset(&text, now);
            let _ = values::split_outside_quotes(&text, b',').count();
        }
    }
}
