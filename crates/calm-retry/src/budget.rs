//! [`RetryBudget`]: a cap on retries shared by every clone of a layer.

use std::{fmt, sync::Arc, time::Duration};

use tower::retry::budget::{Budget, TpsBudget};

use crate::error::{ConfigError, ConfigErrorKind};

/// A retry budget: retries may add at most a fixed fraction of extra load on top of the
/// requests themselves, plus a small floor, over a sliding window.
///
/// Every request deposits into the budget; every retry withdraws from it; when it is empty
/// the layer stops retrying and returns the outcome it has with
/// [`StopReason::BudgetExhausted`](crate::StopReason::BudgetExhausted). This is what stops a
/// retry storm when a server is down for everyone.
///
/// The default is tower's [`TpsBudget`] defaults: a 10 s window, a floor of 10 retries per
/// second, and retries worth 20 % of the requests on top.
///
/// # Clone
///
/// Clones share one budget. A [`RetryLayer`](crate::RetryLayer) owns one, shared by all its
/// clones and every service it builds; pass the same `RetryBudget` to several policies to
/// share it wider.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use calm_retry::{RetryBudget, RetryPolicy};
///
/// // 5 % extra load, 1 retry/s floor, over 30 s.
/// let budget = RetryBudget::new(Duration::from_secs(30), 1, 0.05).unwrap();
/// let policy = RetryPolicy::default().budget(budget);
/// # let _ = policy;
///
/// assert!(RetryBudget::new(Duration::from_millis(10), 1, 0.05).is_err());
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<dyn Budget + Send + Sync>,
}

impl RetryBudget {
    /// A [`TpsBudget`] over `window` (1 s ..= 60 s) that allows `min_per_sec` retries per
    /// second whatever the load, plus `retry_ratio` retries per request (`0.2` = 20 % extra
    /// load; `0.0 ..= 1000.0`).
    ///
    /// The floor is a reserve of `min_per_sec × window` retries (whole seconds) per window,
    /// not a per-second rate: all of it may be spent at once. tower rounds a ratio of at most
    /// 1 down to "one retry per `⌊1 / ratio⌋` requests": `0.3` allows one per 3 requests, and
    /// anything above `0.5` one per request.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when a value is out of range (tower's constructor would panic).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{error::ConfigErrorKind, RetryBudget};
    ///
    /// // No floor, one retry for every two requests.
    /// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5).unwrap();
    /// assert!(!budget.withdraw());
    /// budget.deposit();
    /// budget.deposit();
    /// assert!(budget.withdraw());
    /// assert!(!budget.withdraw());
    ///
    /// // A floor of 1 retry per second over 2 s: two retries with no requests at all.
    /// let floor = RetryBudget::new(Duration::from_secs(2), 1, 0.0).unwrap();
    /// assert!(floor.withdraw() && floor.withdraw());
    /// assert!(!floor.withdraw());
    ///
    /// let err = RetryBudget::new(Duration::from_secs(120), 1, 0.2).unwrap_err();
    /// assert_eq!(err.kind(), ConfigErrorKind::BudgetWindow);
    /// ```
    pub fn new(window: Duration, min_per_sec: u32, retry_ratio: f32) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
            return Err(ConfigError::new(
                ConfigErrorKind::BudgetWindow,
                "the budget window must be between 1 s and 60 s",
            ));
        }
        if !(retry_ratio.is_finite() && (0.0..=1000.0).contains(&retry_ratio)) {
            return Err(ConfigError::new(
                ConfigErrorKind::BudgetRatio,
                "the budget retry ratio must be finite and in 0.0..=1000.0",
            ));
        }
        if min_per_sec >= i32::MAX as u32 {
            return Err(ConfigError::new(
                ConfigErrorKind::BudgetMinPerSecond,
                "the budget floor must be below i32::MAX retries per second",
            ));
        }
        Ok(Self::from_budget(TpsBudget::new(
            window,
            min_per_sec,
            retry_ratio,
        )))
    }

    /// Wraps any tower [`Budget`].
    ///
    /// ```
    /// use calm_retry::{RetryBudget, RetryPolicy};
    /// use tower::retry::budget::Budget;
    ///
    /// /// Never allows a retry (a kill switch, say).
    /// struct Closed;
    /// impl Budget for Closed {
    ///     fn deposit(&self) {}
    ///     fn withdraw(&self) -> bool {
    ///         false
    ///     }
    /// }
    ///
    /// let budget = RetryBudget::from_budget(Closed);
    /// budget.deposit();
    /// assert!(!budget.withdraw());
    /// let policy = RetryPolicy::default().budget(budget);
    /// # let _ = policy;
    /// ```
    pub fn from_budget<B: Budget + Send + Sync + 'static>(budget: B) -> Self {
        RetryBudget {
            inner: Arc::new(budget),
        }
    }

    /// Records a request (a first attempt). [`Retry`](crate::Retry) calls it for every
    /// request; see [`new`](Self::new) for an example.
    pub fn deposit(&self) {
        self.inner.deposit();
    }

    /// Takes one retry out of the budget; `false` when it is empty. [`Retry`](crate::Retry)
    /// calls it before every retry; see [`new`](Self::new) for an example.
    pub fn withdraw(&self) -> bool {
        self.inner.withdraw()
    }

    /// Whether both handles share one budget.
    ///
    /// ```
    /// use calm_retry::{RetryBudget, RetryLayer, RetryPolicy};
    ///
    /// let budget = RetryBudget::default();
    /// assert!(budget.ptr_eq(&budget.clone()));
    /// assert!(!budget.ptr_eq(&RetryBudget::default()));
    ///
    /// // Two layers drawing from one budget.
    /// let a = RetryLayer::new(RetryPolicy::default().budget(budget.clone())).unwrap();
    /// let b = RetryLayer::new(RetryPolicy::default().budget(budget.clone())).unwrap();
    /// assert!(a.budget().unwrap().ptr_eq(b.budget().unwrap()));
    /// ```
    pub fn ptr_eq(&self, other: &RetryBudget) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for RetryBudget {
    /// tower's [`TpsBudget::default`]: 10 s window, 10 retries/s floor, 20 % extra load.
    fn default() -> Self {
        Self::from_budget(TpsBudget::default())
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("shared_by", &Arc::strong_count(&self.inner))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_are_errors_not_panics() {
        let s = Duration::from_secs;
        assert_eq!(
            RetryBudget::new(s(0), 1, 0.2).unwrap_err().kind(),
            ConfigErrorKind::BudgetWindow
        );
        assert_eq!(
            RetryBudget::new(s(61), 1, 0.2).unwrap_err().kind(),
            ConfigErrorKind::BudgetWindow
        );
        for ratio in [-0.1, 1000.5, f32::NAN, f32::INFINITY] {
            assert_eq!(
                RetryBudget::new(s(10), 1, ratio).unwrap_err().kind(),
                ConfigErrorKind::BudgetRatio
            );
        }
        assert_eq!(
            RetryBudget::new(s(10), u32::MAX, 0.2).unwrap_err().kind(),
            ConfigErrorKind::BudgetMinPerSecond
        );
        assert!(RetryBudget::new(s(1), 0, 0.0).is_ok());
        assert!(RetryBudget::new(s(60), 1000, 1000.0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_limits_withdrawals() {
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5).unwrap();
        assert!(!budget.withdraw());
        budget.deposit();
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        let clone = budget.clone();
        assert!(clone.ptr_eq(&budget));
        clone.deposit();
        clone.deposit();
        assert!(budget.withdraw());
    }
}
