//! The metrics the rate limiter records through the [`metrics`](https://docs.rs/metrics)
//! facade, with the cargo feature `metrics` (without it, nothing here costs anything).
//!
//! | name | kind | unit | labels |
//! |---|---|---|---|
//! | `calm.rate_limit.wait.duration` | histogram | seconds | `server.address` |
//! | `calm.rate_limit.queued` | gauge | requests | `server.address` |
//! | `calm.rate_limit.refusals` | counter | requests | `server.address` |
//! | `calm.rate_limit.pauses` | counter | pauses | `server.address`, `calm.rate_limit.header` |
//! | `calm.rate_limit.learned_rate` | gauge | requests per second | `server.address` |
//!
//! Through a [`RateLimit`](crate::RateLimit) service, every request that gets its place
//! records its wait (zero when the place was free at once), and a request waiting for its
//! place counts in `queued` until it goes or is dropped. A refusal is a request whose place
//! lay further away than its `max_wait`. A pause is a server hint that moved the end of the
//! shared pause, labelled with the header that said so (`retry-after`, `ratelimit`,
//! `x-ratelimit-reset`, …, or `status` for a bare 429 with a pause of its own).
//! `server.address` is the host (without the port) of the layer's
//! [`host`](crate::RateLimitLayer::host), else of the request URI.

/// The metric names, for dashboards and tests.
pub mod names {
    /// Histogram, seconds: how long a request waited for its place.
    pub const WAIT_DURATION: &str = "calm.rate_limit.wait.duration";
    /// Gauge: requests waiting for their place now.
    pub const QUEUED: &str = "calm.rate_limit.queued";
    /// Counter: requests refused because their place lay past their `max_wait`.
    pub const REFUSALS: &str = "calm.rate_limit.refusals";
    /// Counter: server hints that paused every caller of the limiter.
    pub const PAUSES: &str = "calm.rate_limit.pauses";
    /// Gauge, requests per second: the rate an adaptive limiter paces at.
    pub const LEARNED_RATE: &str = "calm.rate_limit.learned_rate";
}

#[cfg(feature = "metrics")]
pub(crate) use enabled::{learned, paused, Address, Queued};

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::{learned, paused, Address, Queued};

#[cfg(feature = "metrics")]
mod enabled {
    use std::{fmt, sync::Arc, time::Duration};

    use http::Request;
    use metrics::{counter, gauge, histogram, SharedString};

    use super::names;
    use crate::layer::host_only;

    /// The `server.address` label of a request's metrics.
    #[derive(Clone, Debug)]
    pub(crate) struct Address(SharedString);

    impl Address {
        /// The `configured` address (the layer's host without its port), or the request's
        /// host; shared, so the labels that copy it do not allocate.
        pub(crate) fn of<B>(configured: Option<&Arc<str>>, req: &Request<B>) -> Address {
            let host = match configured {
                Some(address) => Arc::clone(address),
                None => Arc::from(req.uri().host().unwrap_or("")),
            };
            Address(SharedString::from(host))
        }

        pub(crate) fn waited(&self, wait: Duration) {
            histogram!(names::WAIT_DURATION, "server.address" => self.0.clone())
                .record(wait.as_secs_f64());
        }

        pub(crate) fn refused(&self) {
            counter!(names::REFUSALS, "server.address" => self.0.clone()).increment(1);
        }

        pub(crate) fn queued(self) -> Queued {
            gauge!(names::QUEUED, "server.address" => self.0.clone()).increment(1.0);
            Queued(self)
        }
    }

    /// A request counted in `queued` until dropped.
    #[derive(Debug)]
    pub(crate) struct Queued(Address);

    impl Queued {
        pub(crate) fn address(&self) -> &Address {
            &self.0
        }
    }

    impl Drop for Queued {
        fn drop(&mut self) {
            gauge!(names::QUEUED, "server.address" => (self.0).0.clone()).decrement(1.0);
        }
    }

    /// A server hint paused the limiter; `host` as logged, `header` the hint's source.
    pub(crate) fn paused(host: &dyn fmt::Display, header: &'static str) {
        let address = host_only(&host.to_string());
        counter!(names::PAUSES, "server.address" => address, "calm.rate_limit.header" => header)
            .increment(1);
    }

    /// An adaptive limiter's rate changed to `rate`.
    pub(crate) fn learned(host: &dyn fmt::Display, rate: f64) {
        let address = host_only(&host.to_string());
        gauge!(names::LEARNED_RATE, "server.address" => address).set(rate);
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use std::{fmt, sync::Arc, time::Duration};

    use http::Request;

    /// Nothing to label without the `metrics` feature.
    #[derive(Clone, Debug)]
    pub(crate) struct Address;

    impl Address {
        pub(crate) fn of<B>(_configured: Option<&Arc<str>>, _req: &Request<B>) -> Address {
            Address
        }

        pub(crate) fn waited(&self, _wait: Duration) {}

        pub(crate) fn refused(&self) {}

        pub(crate) fn queued(self) -> Queued {
            Queued(self)
        }
    }

    #[derive(Debug)]
    pub(crate) struct Queued(Address);

    impl Queued {
        pub(crate) fn address(&self) -> &Address {
            &self.0
        }
    }

    pub(crate) fn paused(_host: &dyn fmt::Display, _header: &'static str) {}

    pub(crate) fn learned(_host: &dyn fmt::Display, _rate: f64) {}
}
