//! A registry of [`Client`]s: one per base URL, configured once.

use crate::{BuildError, Client, ClientBuilder};
use calm_client::BaseUrl;
use calm_registry::RegistryKey;
use std::fmt;
use std::sync::OnceLock;

type Built = Result<Client, BuildError>;

/// One shared [`Client`] per base URL, all built by one configuration closure.
///
/// Every part of a program that asks for the same base URL (in any equivalent spelling) gets
/// a clone of the same client — one connection pool, one rate budget, one retry budget.
/// The closure runs exactly once per base URL, even when many tasks ask at the same moment.
///
/// ```
/// use calm::{Quota, Registry, RetryPolicy};
/// use std::num::NonZeroU32;
///
/// let registry = Registry::new(|builder| {
///     builder
///         .rate_limit(Quota::per_minute(NonZeroU32::new(60).unwrap()))
///         .retry(RetryPolicy::default().max_retries(3))
/// });
/// let a = registry.get("https://API.example.com:443/v1")?;
/// let b = registry.get("https://api.example.com/v1/")?;
/// assert!(a.limiter().unwrap().ptr_eq(b.limiter().unwrap()));
/// assert_eq!(registry.len(), 1);
/// # Ok::<(), tower::BoxError>(())
/// ```
///
/// # Errors
///
/// [`get`](Registry::get) fails with [`InvalidBaseUrl`](crate::client::InvalidBaseUrl) for a
/// string that is not a base URL, and with the [`BuildError`] of the configuration closure's
/// builder (kept, so a broken configuration fails the same way every time).
#[derive(Clone)]
pub struct Registry {
    inner: calm_registry::Registry<Built>,
}

impl Registry {
    /// A registry whose clients are built by `configure(Client::builder(base)).build()`.
    pub fn new<F>(configure: F) -> Self
    where
        F: Fn(ClientBuilder) -> ClientBuilder + Send + Sync + 'static,
    {
        Registry {
            inner: calm_registry::Registry::new(move |base: &BaseUrl| {
                configure(Client::builder(base)).build()
            }),
        }
    }

    /// A registry whose clients are built by `make(base)`, for stacks over a transport of your
    /// own (a test double, a hyper client with custom settings).
    ///
    /// ```
    /// let registry = calm::Registry::with_factory(|base| {
    ///     calm::Client::builder(base).build_with(tower::service_fn(|_r: http::Request<calm::Body>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    ///     }))
    /// });
    /// assert!(registry.get("http://api.test").is_ok());
    /// ```
    pub fn with_factory<F>(make: F) -> Self
    where
        F: Fn(&BaseUrl) -> Result<Client, BuildError> + Send + Sync + 'static,
    {
        Registry {
            inner: calm_registry::Registry::new(move |base: &BaseUrl| make(base)),
        }
    }

    /// The process-wide registry used by [`calm::shared`](crate::shared): default settings
    /// (retries on, no rate limit) unless [`set_global`](Registry::set_global) installed
    /// another first.
    pub fn global() -> &'static Registry {
        GLOBAL.get_or_init(|| Registry::new(|builder| builder))
    }

    /// Installs `registry` as the process-wide registry. Call it at start-up, before the
    /// first [`global`](Registry::global) or [`calm::shared`](crate::shared).
    ///
    /// # Errors
    ///
    /// Gives `registry` back if the global registry was already set or used.
    pub fn set_global(registry: Registry) -> Result<(), Registry> {
        GLOBAL.set(registry)
    }

    /// The client for `base`, built on first use.
    ///
    /// # Errors
    ///
    /// See [`Registry`]'s `# Errors`.
    pub fn get<K>(&self, base: &K) -> Result<Client, tower::BoxError>
    where
        K: RegistryKey + ?Sized,
    {
        Ok(self.inner.get(base)??)
    }

    /// Forgets the client for `base`; clients already handed out keep working.
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`](crate::client::InvalidBaseUrl) for a string that is not a base URL.
    pub fn remove<K>(&self, base: &K) -> Result<Option<Client>, calm_client::InvalidBaseUrl>
    where
        K: RegistryKey + ?Sized,
    {
        Ok(self.inner.remove(base)?.and_then(Result::ok))
    }

    /// How many base URLs have a client.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no client was built yet.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The base URLs that have a client.
    pub fn keys(&self) -> Vec<BaseUrl> {
        self.inner.keys()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("keys", &self.inner.keys())
            .finish()
    }
}

static GLOBAL: OnceLock<Registry> = OnceLock::new();

/// The shared client for `base` from the process-wide [`Registry::global`]: Python's
/// "one session per base URL" without passing a handle around.
///
/// ```
/// let a = calm::shared("https://api.example.com")?;
/// let b = calm::shared("https://API.example.com:443/")?;
/// assert_eq!(a.base_url(), b.base_url());
/// # Ok::<(), tower::BoxError>(())
/// ```
///
/// # Errors
///
/// See [`Registry`]'s `# Errors`.
pub fn shared<K>(base: &K) -> Result<Client, tower::BoxError>
where
    K: RegistryKey + ?Sized,
{
    Registry::global().get(base)
}
