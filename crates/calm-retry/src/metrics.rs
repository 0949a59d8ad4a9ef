//! The metrics the retry layer records through the [`metrics`](https://docs.rs/metrics) facade,
//! with the cargo feature `metrics` (without it, nothing here costs anything).
//!
//! | name | kind | unit | labels |
//! |---|---|---|---|
//! | `http.client.request.duration` | histogram | seconds | `http.request.method`, `server.address`, `http.response.status_class` |
//! | `http.client.active_requests` | gauge | requests | `http.request.method`, `server.address` |
//! | `calm.http.client.attempts` | counter | attempts | `http.request.method`, `server.address` |
//! | `calm.http.client.retries` | counter | retries | `server.address`, `calm.retry.reason` |
//!
//! `calm.http.client.attempts` counts the attempts sent to the layers below; an attempt the
//! rate limiter refused (`max_wait`) is not counted, as it never became an HTTP request.
//! `http.client.request.duration` measures the *logical* request, as its caller waits for it:
//! from the call to the final response head (or error), rate-limiter waits, attempts and
//! backoffs included. `http.response.status_class` is `1xx` … `5xx`, `error` when the
//! request ended without a response, or `cancelled` when it was dropped before it ended (its
//! caller gave up, or a timeout around the layer ran out). `calm.retry.reason` is the retry's
//! [`RetryReason`](crate::RetryReason) as text (`status 503`, `connect error`,
//! `transport error`). `server.address` is the request URI's host (empty for a URI without
//! one).

/// The metric names, for dashboards and tests.
pub mod names {
    /// Histogram, seconds: one logical request, from the call to its final response head.
    pub const REQUEST_DURATION: &str = "http.client.request.duration";
    /// Gauge: requests under way (called, not yet answered or dropped).
    pub const ACTIVE_REQUESTS: &str = "http.client.active_requests";
    /// Counter: attempts sent, first tries and retries (a place the rate limiter below refused
    /// is not one).
    pub const ATTEMPTS: &str = "calm.http.client.attempts";
    /// Counter: retries made, by reason.
    pub const RETRIES: &str = "calm.http.client.retries";
}

#[cfg(feature = "metrics")]
pub(crate) use enabled::Meter;

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::Meter;

#[cfg(feature = "metrics")]
mod enabled {
    use std::sync::Arc;

    use http::{Request, StatusCode};
    use metrics::{counter, gauge, histogram, SharedString};
    use tokio::time::Instant;

    use super::names;
    use crate::info::RetryReason;
    use crate::policy::RetryPolicy;
    use crate::trace::{self, Outcome};

    /// The metrics of one logical request; dropping it ends the request's `active_requests`
    /// (and records its duration as `cancelled` if it never finished).
    #[derive(Debug)]
    pub(crate) struct Meter {
        method: SharedString,
        address: SharedString,
        started: Instant,
        finished: bool,
    }

    impl Meter {
        pub(crate) fn start<B>(req: &Request<B>) -> Meter {
            let method = method(req.method());
            // NOTE: shared, so that each label copying it does not allocate.
            let address = SharedString::from(Arc::<str>::from(req.uri().host().unwrap_or("")));
            gauge!(names::ACTIVE_REQUESTS, "http.request.method" => method.clone(), "server.address" => address.clone())
                .increment(1.0);
            Meter {
                method,
                address,
                started: Instant::now(),
                finished: false,
            }
        }

        /// Counts an attempt that came to `outcome`, unless the rate limiter below refused
        /// it: such an attempt was no HTTP request.
        pub(crate) fn attempt(&self, outcome: Outcome<'_>, policy: &RetryPolicy) {
            if let Outcome::Error(err) = outcome {
                if trace::error_type(err, policy) == "rate_limited" {
                    return;
                }
            }
            counter!(names::ATTEMPTS, "http.request.method" => self.method.clone(), "server.address" => self.address.clone())
                .increment(1);
        }

        pub(crate) fn retry(&self, reason: RetryReason) {
            counter!(names::RETRIES, "server.address" => self.address.clone(), "calm.retry.reason" => reason.to_string())
                .increment(1);
        }

        /// The request ended with `status` (`None`: an error).
        pub(crate) fn finish(&mut self, status: Option<StatusCode>) {
            let class = match status.map(|s| s.as_u16() / 100) {
                Some(1) => "1xx",
                Some(2) => "2xx",
                Some(3) => "3xx",
                Some(4) => "4xx",
                Some(5) => "5xx",
                Some(_) => "other",
                None => "error",
            };
            self.record(class);
        }

        fn record(&mut self, class: &'static str) {
            self.finished = true;
            histogram!(
                names::REQUEST_DURATION,
                "http.request.method" => self.method.clone(),
                "server.address" => self.address.clone(),
                "http.response.status_class" => class,
            )
            .record(self.started.elapsed().as_secs_f64());
        }
    }

    impl Drop for Meter {
        fn drop(&mut self) {
            if !self.finished {
                self.record("cancelled");
            }
            gauge!(names::ACTIVE_REQUESTS, "http.request.method" => self.method.clone(), "server.address" => self.address.clone())
                .decrement(1.0);
        }
    }

    /// The method as a label, without an allocation for the standard ones.
    fn method(method: &http::Method) -> SharedString {
        match *method {
            http::Method::GET => SharedString::const_str("GET"),
            http::Method::HEAD => SharedString::const_str("HEAD"),
            http::Method::POST => SharedString::const_str("POST"),
            http::Method::PUT => SharedString::const_str("PUT"),
            http::Method::DELETE => SharedString::const_str("DELETE"),
            http::Method::PATCH => SharedString::const_str("PATCH"),
            http::Method::OPTIONS => SharedString::const_str("OPTIONS"),
            _ => SharedString::const_str("_OTHER"),
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use http::{Request, StatusCode};

    use crate::info::RetryReason;
    use crate::policy::RetryPolicy;
    use crate::trace::Outcome;

    /// Nothing to record without the `metrics` feature.
    #[derive(Debug)]
    pub(crate) struct Meter;

    impl Meter {
        pub(crate) fn start<B>(_req: &Request<B>) -> Meter {
            Meter
        }

        pub(crate) fn attempt(&self, _outcome: Outcome<'_>, _policy: &RetryPolicy) {}

        pub(crate) fn retry(&self, _reason: RetryReason) {}

        pub(crate) fn finish(&mut self, _status: Option<StatusCode>) {}
    }
}
