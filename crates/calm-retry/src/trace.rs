//! The spans the retry layer opens, named after the OpenTelemetry HTTP client conventions.
//!
//! Every request through [`Retry`](crate::Retry) gets one span for the logical request (INFO,
//! named `calm.request`) and, under it, one CLIENT span per attempt (DEBUG, named by the
//! method: `GET`, `POST`, …; `HTTP` for an extension method). With a subscriber at INFO the
//! attempt spans are not even built.
//!
//! | field | request span | attempt span |
//! |---|---|---|
//! | `otel.kind` | `internal` | `client` |
//! | `otel.name` | | the method |
//! | `http.request.method` | ✓ | ✓ |
//! | `server.address`, `server.port` | ✓ | ✓ |
//! | `url.full` | ✓ | ✓ |
//! | `http.response.status_code` | the final response's | this attempt's |
//! | `error.type` | the final outcome's | this attempt's |
//! | `otel.status_code` | `ERROR` for an error or a status ≥ 400 | same |
//! | `http.request.resend_count` | | 1, 2, … on retries (absent on the first attempt) |
//! | `calm.retry.reason` | | why this retry was made (`status 503`, `connect error`, …) |
//! | `calm.retry.wait` | | seconds waited before this retry |
//! | `calm.retry.wait_source` | | `backoff` or `retry-after` |
//! | `calm.rate_limit.wait` | | seconds this attempt waited for the rate limiter below (recorded by `calm-ratelimit`) |
//! | `calm.rate_limit.learned_rate` | | an adaptive rate limiter's rate after this attempt's response, per second |
//! | `calm.attempts` | attempts made | |
//! | `calm.retry.stop` | why no further retry was made, unless the last response was final | |
//!
//! `url.full` never shows userinfo, and shows the query as `?***` unless the layer was told
//! otherwise ([`RetryLayer::trace_url_query`](crate::RetryLayer::trace_url_query)).
//! `error.type` is the status code for a response ≥ 400, else `connect`, `rate_limited`
//! (a rate limiter below refused to wait; recognised by the policy's
//! [`refused_until`](crate::RetryPolicy::refused_until), which calm's `Client` sets),
//! `timeout`, `cancelled` (the request was dropped before it ended: its caller gave up, or a
//! timeout around the layer ran out), or `_OTHER`.

use std::{error::Error as StdError, fmt};

use http::{Method, Request, StatusCode, Uri};
use tracing::{field::Empty, Span};

use crate::{
    info::{RetryInfo, RetryRecord, StopReason},
    policy::RetryPolicy,
};

/// Opens the span of the logical request `req`.
pub(crate) fn request_span<B>(req: &Request<B>, full_url: bool) -> Span {
    let (method, uri) = (req.method(), req.uri());
    tracing::info_span!(
        "calm.request",
        otel.kind = "internal",
        http.request.method = %method,
        server.address = %Address(uri),
        server.port = port(uri),
        url.full = %UrlFull { uri, full_url },
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        calm.attempts = Empty,
        calm.retry.stop = Empty,
    )
}

/// A URI's host as `server.address` shows it, found only when a subscriber formats it.
struct Address<'a>(&'a Uri);

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.host().unwrap_or(""))
    }
}

/// Opens the span of an attempt to send `req`, under `request`; `resend` is 0 for the first
/// attempt, and `why` the record of the retry an attempt after it makes.
pub(crate) fn attempt_span<B>(
    request: &Span,
    req: &Request<B>,
    full_url: bool,
    resend: u32,
    why: Option<&RetryRecord>,
) -> Span {
    if request.is_disabled() {
        return Span::none();
    }
    let span = new_attempt_span(request, req.method(), req.uri(), full_url);
    if resend > 0 {
        span.record("http.request.resend_count", resend);
    }
    if let Some(record) = why {
        span.record(
            "calm.retry.reason",
            tracing::field::display(record.reason()),
        );
        span.record("calm.retry.wait", record.wait().as_secs_f64());
        span.record(
            "calm.retry.wait_source",
            tracing::field::display(record.wait_source()),
        );
    }
    span
}

/// Records how the request ended: its last outcome and what `info` says.
pub(crate) fn request_done(
    span: &Span,
    outcome: Outcome<'_>,
    info: Option<&RetryInfo>,
    policy: &RetryPolicy,
) {
    if span.is_disabled() {
        return;
    }
    record_outcome(span, outcome, policy);
    if let Some(info) = info {
        span.record("calm.attempts", info.attempts());
        if *info.stop_reason() != StopReason::Succeeded {
            span.record(
                "calm.retry.stop",
                tracing::field::display(info.stop_reason()),
            );
        }
    }
}

/// Records on an open span that its request was dropped before it ended.
pub(crate) fn record_cancelled(span: &Span) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", "cancelled");
    span.record("otel.status_code", "ERROR");
}

/// What an attempt (or the request) came to.
#[derive(Clone, Copy)]
pub(crate) enum Outcome<'a> {
    Status(StatusCode),
    Error(&'a (dyn StdError + 'static)),
}

/// Records what an attempt (or the request) came to on its span.
pub(crate) fn record_outcome(span: &Span, outcome: Outcome<'_>, policy: &RetryPolicy) {
    if span.is_disabled() {
        return;
    }
    match outcome {
        Outcome::Status(status) => {
            span.record("http.response.status_code", status.as_u16());
            if status.as_u16() >= 400 {
                span.record("error.type", status.as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
        Outcome::Error(err) => {
            span.record("error.type", error_type(err, policy));
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// A low-cardinality name for an attempt's error (OpenTelemetry's `error.type`).
pub(crate) fn error_type(err: &(dyn StdError + 'static), policy: &RetryPolicy) -> &'static str {
    if (policy.connect_error)(err) {
        return "connect";
    }
    if policy
        .refused_until
        .is_some_and(|refused| refused(err).is_some())
    {
        return "rate_limited";
    }
    let mut source = Some(err);
    while let Some(err) = source {
        if err.is::<tower::timeout::error::Elapsed>()
            || err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return "timeout";
        }
        source = err.source();
    }
    "_OTHER"
}

/// The attempt span, named by the method (a span's name is static, so one call site each).
fn new_attempt_span(parent: &Span, method: &Method, uri: &Uri, full_url: bool) -> Span {
    macro_rules! attempt {
        ($name:literal) => {
            tracing::debug_span!(
                parent: parent,
                $name,
                otel.kind = "client",
                otel.name = %method,
                http.request.method = %method,
                server.address = %Address(uri),
                server.port = port(uri),
                url.full = %UrlFull { uri, full_url },
                http.request.resend_count = Empty,
                http.response.status_code = Empty,
                error.type = Empty,
                otel.status_code = Empty,
                calm.retry.reason = Empty,
                calm.retry.wait = Empty,
                calm.retry.wait_source = Empty,
                calm.rate_limit.wait = Empty,
                calm.rate_limit.learned_rate = Empty,
            )
        };
    }
    match *method {
        Method::GET => attempt!("GET"),
        Method::HEAD => attempt!("HEAD"),
        Method::POST => attempt!("POST"),
        Method::PUT => attempt!("PUT"),
        Method::DELETE => attempt!("DELETE"),
        Method::PATCH => attempt!("PATCH"),
        Method::OPTIONS => attempt!("OPTIONS"),
        Method::TRACE => attempt!("TRACE"),
        Method::CONNECT => attempt!("CONNECT"),
        _ => attempt!("HTTP"),
    }
}

/// The port the request goes to: the URI's, else its scheme's default.
// NOTE: read from the end of the authority in one pass of its bytes: `Uri::port_u16` parses
// the authority again, a few hundred instructions, which is most of an enabled span's cost.
fn port(uri: &Uri) -> Option<u16> {
    let default = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let Some(authority) = uri.authority() else {
        return default;
    };
    let mut port: u32 = 0;
    let mut scale: u32 = 1;
    for &byte in authority.as_str().as_bytes().iter().rev() {
        match byte {
            b'0'..=b'9' if scale <= 10_000 => {
                port += u32::from(byte - b'0') * scale;
                scale *= 10;
            }
            b':' if scale > 1 => return u16::try_from(port).ok(),
            _ => break,
        }
    }
    default
}

/// A URI as `url.full` shows it: never its userinfo; its query as `***` unless `full_url`.
///
/// ```
/// use calm_retry::trace::UrlFull;
///
/// let uri = "https://user:secret@api.example.com/v1/items?token=abc".parse().unwrap();
/// assert_eq!(
///     UrlFull { uri: &uri, full_url: false }.to_string(),
///     "https://api.example.com/v1/items?***",
/// );
/// assert_eq!(
///     UrlFull { uri: &uri, full_url: true }.to_string(),
///     "https://api.example.com/v1/items?token=abc",
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct UrlFull<'a> {
    /// The URI shown.
    pub uri: &'a Uri,
    /// Whether its query is shown.
    pub full_url: bool,
}

impl fmt::Display for UrlFull<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.uri;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            // NOTE: the last `@` ends the userinfo; nothing before it is shown.
            let host = authority.as_str().rsplit('@').next().unwrap_or("");
            f.write_str(host)?;
        }
        f.write_str(uri.path())?;
        match uri.query() {
            Some(query) if self.full_url => write!(f, "?{query}"),
            Some(_) => f.write_str("?***"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{port, Address};

    #[test]
    fn host_and_port_are_read_as_uri_reads_them() {
        for (uri, host, expected) in [
            ("http://api.test:8080/v1", "api.test", Some(8080)),
            ("https://api.test/v1", "api.test", Some(443)),
            ("http://api.test/", "api.test", Some(80)),
            ("https://u:p@api.test:8443/", "api.test", Some(8443)),
            ("https://u:123@api.test/", "api.test", Some(443)),
            ("http://127.0.0.1:3000/x", "127.0.0.1", Some(3000)),
            ("http://127.0.0.1/x", "127.0.0.1", Some(80)),
            ("http://[::1]:3000/x", "[::1]", Some(3000)),
            ("https://[::1]/x", "[::1]", Some(443)),
            ("http://api.test:65535/", "api.test", Some(65535)),
        ] {
            let parsed: http::Uri = uri.parse().unwrap();
            assert_eq!(port(&parsed), expected, "{uri}");
            assert_eq!(port(&parsed), parsed.port_u16().or(expected), "{uri}");
            assert_eq!(Address(&parsed).to_string(), host, "{uri}");
        }
        let relative: http::Uri = "/relative".parse().unwrap();
        assert_eq!(
            (port(&relative), Address(&relative).to_string()),
            (None, String::new())
        );
    }
}
