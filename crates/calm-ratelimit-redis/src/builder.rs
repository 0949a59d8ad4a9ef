//! [`RedisBackendBuilder`]: settings, checked when built.

use std::sync::Arc;
use std::time::Duration;

use calm_ratelimit::backend::InProcess;
use calm_ratelimit::{Limiter, Quota};

use crate::backend::{Fallback, Inner, RedisBackend};
use crate::error::{Error, ErrorKind};
use crate::keys::{Keys, Spacing};
use crate::store::{Scripts, Target};

/// How long a round trip to Redis may take before the fallback policy applies.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// How often Redis is tried again during an outage.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);

/// The default first part of every key.
pub const DEFAULT_KEY_PREFIX: &str = "calm:rl";

/// Builds a [`RedisBackend`]; from [`RedisBackend::builder`] or
/// [`RedisBackend::cluster_builder`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::Quota;
/// use calm_ratelimit_redis::{Fallback, RedisBackend};
///
/// let n = |n| NonZeroU32::new(n).unwrap();
/// let limiter = RedisBackend::builder("redis://127.0.0.1:6379/", "github:token-a")
///     .quotas([Quota::per_second(n(10)), Quota::per_hour(n(5000))])
///     .timeout(Duration::from_millis(100))
///     .fallback(Fallback::FailClosed)
///     .limiter()?;
/// # Ok::<(), calm_ratelimit_redis::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisBackendBuilder {
    nodes: Vec<String>,
    cluster: bool,
    name: String,
    quotas: Vec<Quota>,
    timeout: Duration,
    recheck: Duration,
    fallback: Fallback,
    key_prefix: String,
}

impl RedisBackend {
    /// A backend on the Redis (or Valkey) server at `url` (`redis://host:port/db`,
    /// `rediss://…`, `unix:///path`), for the limiter called `name`: every process that
    /// builds one with the same URL and name shares one quota.
    pub fn builder(url: impl Into<String>, name: impl Into<String>) -> RedisBackendBuilder {
        RedisBackendBuilder::new(vec![url.into()], false, name.into())
    }

    /// A backend on a Redis Cluster, reached through any of `urls`.
    ///
    /// ```
    /// use calm_ratelimit_redis::RedisBackend;
    ///
    /// let backend = RedisBackend::cluster_builder(
    ///     ["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"],
    ///     "github:token-a",
    /// )
    /// .build()?;
    /// # Ok::<(), calm_ratelimit_redis::Error>(())
    /// ```
    pub fn cluster_builder(
        urls: impl IntoIterator<Item = impl Into<String>>,
        name: impl Into<String>,
    ) -> RedisBackendBuilder {
        RedisBackendBuilder::new(
            urls.into_iter().map(Into::into).collect(),
            true,
            name.into(),
        )
    }
}

impl RedisBackendBuilder {
    fn new(nodes: Vec<String>, cluster: bool, name: String) -> RedisBackendBuilder {
        RedisBackendBuilder {
            nodes,
            cluster,
            name,
            quotas: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            recheck: DEFAULT_RECHECK,
            fallback: Fallback::default(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }

    /// Adds a quota; a request takes its place in all of them or in none.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quotas.push(quota);
        self
    }

    /// Adds several quotas.
    pub fn quotas(mut self, quotas: impl IntoIterator<Item = Quota>) -> Self {
        self.quotas.extend(quotas);
        self
    }

    /// How long a round trip to Redis (connecting included) may take before Redis counts as
    /// out of reach; [`DEFAULT_TIMEOUT`] by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often Redis is tried again during an outage; [`DEFAULT_RECHECK`] by default.
    pub fn recheck_interval(mut self, interval: Duration) -> Self {
        self.recheck = interval;
        self
    }

    /// What to do while Redis is out of reach; [`Fallback::InProcess`] by default.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// The first part of every key, [`DEFAULT_KEY_PREFIX`] by default; it may not contain
    /// `{` or `}`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Checks the settings and builds the backend. Nothing connects yet: the first request
    /// does, from within a tokio runtime.
    ///
    /// # Errors
    ///
    /// An [`Error`] whose [`kind`](Error::kind) says what is wrong: an invalid URL, an empty
    /// name, a key prefix with braces, a quota too large to compute exactly, no node.
    pub fn build(self) -> Result<RedisBackend, Error> {
        if self.name.is_empty() {
            return Err(Error::new(
                ErrorKind::EmptyName,
                "the limiter's name is empty",
            ));
        }
        if self.key_prefix.contains(['{', '}']) {
            return Err(Error::new(
                ErrorKind::InvalidKeyPrefix,
                format!("key prefix {:?} contains a brace", self.key_prefix),
            ));
        }
        let spacings = self
            .quotas
            .iter()
            .map(|q| {
                Spacing::of(q).ok_or_else(|| {
                    Error::new(
                        ErrorKind::QuotaTooLarge,
                        format!("{q:?} is too large to compute exactly in microseconds"),
                    )
                })
            })
            .collect::<Result<Box<[Spacing]>, Error>>()?;
        let target = self.target()?;
        let keys = Keys::new(&self.key_prefix, &self.name, &spacings);
        let fallback = match self.fallback {
            Fallback::InProcess => Some(InProcess::new(self.quotas.iter().copied())),
            Fallback::InProcessWith(quotas) => Some(InProcess::new(quotas)),
            Fallback::FailClosed => None,
        };
        Ok(RedisBackend {
            inner: Arc::new(Inner::new(
                self.name,
                self.quotas.into(),
                target,
                Scripts::new(keys, spacings),
                self.timeout,
                self.recheck,
                fallback,
            )),
        })
    }

    /// Builds the backend and a [`Limiter`] over it.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn limiter(self) -> Result<Limiter, Error> {
        self.build().map(Limiter::with_backend)
    }

    fn target(&self) -> Result<Target, Error> {
        let invalid = |url: &str, e: redis::RedisError| {
            Error::new(ErrorKind::InvalidUrl, format!("invalid Redis URL {url:?}")).with_source(e)
        };
        let Some(first) = self.nodes.first() else {
            return Err(Error::new(ErrorKind::NoNode, "no Redis node given"));
        };
        let first_client = redis::Client::open(first.as_str()).map_err(|e| invalid(first, e))?;
        if !self.cluster {
            return Ok(Target::Single(first_client));
        }
        for url in &self.nodes {
            redis::Client::open(url.as_str()).map_err(|e| invalid(url, e))?;
        }
        let cluster = redis::cluster::ClusterClient::builder(self.nodes.iter().map(String::as_str))
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .retries(1)
            .build()
            .map_err(|e| invalid(first, e))?;
        Ok(Target::Cluster(Box::new(cluster), first_client))
    }
}

/// A [`Limiter`] enforcing `quotas` across every process that uses the same Redis `url` and
/// `name`, with the default settings.
///
/// # Errors
///
/// As [`RedisBackendBuilder::build`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use calm_ratelimit::Quota;
///
/// let limiter = calm_ratelimit_redis::limiter(
///     "redis://127.0.0.1:6379/",
///     "github:token-a",
///     [Quota::per_hour(NonZeroU32::new(5000).unwrap())],
/// )?;
/// # Ok::<(), calm_ratelimit_redis::Error>(())
/// ```
pub fn limiter(
    url: impl Into<String>,
    name: impl Into<String>,
    quotas: impl IntoIterator<Item = Quota>,
) -> Result<Limiter, Error> {
    RedisBackend::builder(url, name).quotas(quotas).limiter()
}

/// `Limiter::redis(url, name, quotas)`: [`limiter`] spelled on the type it builds.
///
/// ```
/// use std::num::NonZeroU32;
/// use calm_ratelimit::{Limiter, Quota};
/// use calm_ratelimit_redis::LimiterExt as _;
///
/// let limiter = Limiter::redis(
///     "redis://127.0.0.1:6379/",
///     "github:token-a",
///     [Quota::per_hour(NonZeroU32::new(5000).unwrap())],
/// )?;
/// # drop(limiter);
/// # Ok::<(), calm_ratelimit_redis::Error>(())
/// ```
pub trait LimiterExt: Sized {
    /// A limiter enforcing `quotas` across every process that uses the same Redis `url` and
    /// `name`, with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RedisBackendBuilder::build`].
    fn redis(
        url: impl Into<String>,
        name: impl Into<String>,
        quotas: impl IntoIterator<Item = Quota>,
    ) -> Result<Self, Error>;
}

impl LimiterExt for Limiter {
    fn redis(
        url: impl Into<String>,
        name: impl Into<String>,
        quotas: impl IntoIterator<Item = Quota>,
    ) -> Result<Limiter, Error> {
        limiter(url, name, quotas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::num::NonZeroU32;

    fn kind(builder: RedisBackendBuilder) -> ErrorKind {
        builder.build().unwrap_err().kind()
    }

    #[test]
    fn every_setting_is_checked_when_built() {
        let ok = || RedisBackend::builder("redis://127.0.0.1:6379/", "api");
        assert!(ok().build().is_ok());
        assert_eq!(
            kind(RedisBackend::builder("not a url", "api")),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            kind(RedisBackend::builder("redis://127.0.0.1/", "")),
            ErrorKind::EmptyName
        );
        assert_eq!(kind(ok().key_prefix("a{b")), ErrorKind::InvalidKeyPrefix);
        let day = Quota::per_day(NonZeroU32::MIN).burst(NonZeroU32::new(1_000_000).unwrap());
        assert_eq!(kind(ok().quota(day)), ErrorKind::QuotaTooLarge);
        let no_node: [&str; 0] = [];
        assert_eq!(
            kind(RedisBackend::cluster_builder(no_node, "api")),
            ErrorKind::NoNode
        );
        let bad_node = RedisBackend::cluster_builder(["redis://127.0.0.1/", "nope"], "api");
        let err = bad_node.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(err.source().is_some());
    }
}
