use std::sync::Arc;

use tower_layer::Layer;

use crate::{
    budget::RetryBudget,
    error::ConfigError,
    policy::{BudgetChoice, RetryPolicy},
    service::{Config, Retry},
};

/// Applies [`Retry`] to a service: safe, budgeted retries that honor `Retry-After`.
///
/// See the [crate docs](crate) for the behaviour and [`RetryPolicy`] for the settings.
///
/// # Clone
///
/// Cheap (one `Arc`). The layer owns the retry budget: every clone of the layer and every
/// service it builds share it, so retries are bounded across all of them.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_retry::{RetryLayer, RetryPolicy};
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let layer = RetryLayer::new(RetryPolicy::default().max_retries(2)).unwrap();
/// let svc = ServiceBuilder::new().layer(layer).service_fn(|_req: Request<String>| async {
///     Ok::<_, tower::BoxError>(Response::new(String::from("ok")))
/// });
/// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
/// assert_eq!(res.body(), "ok");
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RetryLayer {
    config: Arc<Config>,
}

impl RetryLayer {
    /// Validates `policy` and makes the layer, with its own retry budget unless the policy
    /// names one (or none).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the policy is invalid (see [`RetryPolicy::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{error::ConfigErrorKind, Backoff, RetryLayer, RetryPolicy};
    ///
    /// assert!(RetryLayer::new(RetryPolicy::default()).is_ok());
    ///
    /// let nan = Backoff::exponential(Duration::from_millis(100)).factor(f64::NAN);
    /// let err = RetryLayer::new(RetryPolicy::default().backoff(nan)).unwrap_err();
    /// assert_eq!(err.kind(), ConfigErrorKind::BackoffFactor);
    /// ```
    pub fn new(policy: RetryPolicy) -> Result<Self, ConfigError> {
        policy.validate()?;
        let budget = match &policy.budget {
            BudgetChoice::Layer => Some(RetryBudget::default()),
            BudgetChoice::Disabled => None,
            BudgetChoice::Own(budget) => Some(budget.clone()),
        };
        Ok(RetryLayer {
            config: Arc::new(Config {
                policy,
                budget,
                trace_url_query: false,
            }),
        })
    }

    /// The layer's policy.
    ///
    /// ```
    /// use calm_retry::{RetryLayer, RetryPolicy};
    /// use http::StatusCode;
    ///
    /// let layer = RetryLayer::new(RetryPolicy::default().retry_on_status([StatusCode::CONFLICT]))
    ///     .unwrap();
    /// assert!(layer.policy().retries_status(StatusCode::CONFLICT));
    /// ```
    pub fn policy(&self) -> &RetryPolicy {
        &self.config.policy
    }

    /// The budget shared by this layer's services (`None` with [`RetryPolicy::no_budget`]).
    ///
    /// ```
    /// use calm_retry::RetryLayer;
    ///
    /// let layer = RetryLayer::default();
    /// let clone = layer.clone();
    /// // Every clone draws from the same budget.
    /// assert!(layer.budget().unwrap().ptr_eq(clone.budget().unwrap()));
    /// ```
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.config.budget.as_ref()
    }

    /// Whether the spans' `url.full` shows each request's query string (off by default: a
    /// query often carries an API key or a signature, so it shows as `?***`). Userinfo is
    /// never shown. See [`trace`](crate::trace) for the spans.
    ///
    /// ```
    /// use calm_retry::RetryLayer;
    ///
    /// let layer = RetryLayer::default();
    /// assert!(!layer.traces_url_query());
    /// let layer = layer.trace_url_query(true);
    /// assert!(layer.traces_url_query());
    /// ```
    pub fn trace_url_query(self, yes: bool) -> Self {
        RetryLayer {
            config: Arc::new(Config {
                policy: self.config.policy.clone(),
                budget: self.config.budget.clone(),
                trace_url_query: yes,
            }),
        }
    }

    /// Whether spans show the query: see [`trace_url_query`](Self::trace_url_query).
    pub fn traces_url_query(&self) -> bool {
        self.config.trace_url_query
    }
}

impl Default for RetryLayer {
    /// A layer with [`RetryPolicy::default()`].
    fn default() -> Self {
        RetryLayer {
            config: Arc::new(Config {
                policy: RetryPolicy::default(),
                budget: Some(RetryBudget::default()),
                trace_url_query: false,
            }),
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::from_parts(inner, Arc::clone(&self.config))
    }
}
