//! [`Snapshot`]: what a dashboard needs to know about a limiter.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::StoreStatus;

/// The state of a [`Limiter`](crate::Limiter) at one instant, from
/// [`Limiter::snapshot`](crate::Limiter::snapshot).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::{Limiter, Quota};
///
/// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(2).unwrap()));
/// limiter.acquire().await.unwrap();
/// limiter.acquire().await.unwrap(); // waits 500 ms
/// let snap = limiter.snapshot();
/// assert_eq!(snap.waits, 1);
/// assert_eq!(snap.total_waited, Duration::from_millis(500));
/// assert_eq!(snap.next_free, snap.taken_at + Duration::from_millis(500));
/// # }
/// ```
///
/// Its `Debug` shows instants relative to when the snapshot was taken, durations rounded to
/// the millisecond:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// # use std::num::NonZeroU32;
/// # use std::time::Duration;
/// # use calm_ratelimit::{Limiter, Quota};
/// # use tokio::time::Instant;
/// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(2).unwrap()));
/// limiter.acquire().await.unwrap();
/// limiter.pause_until(Instant::now() + Duration::from_millis(29_800));
/// let shown = format!("{:?}", limiter.snapshot());
/// assert!(shown.starts_with("Snapshot { next_free: in 29.8s, paused: 29.8s left, queued: 0,"));
/// # }
/// ```
#[derive(Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// When this snapshot was taken.
    pub taken_at: Instant,
    /// The instant a request asking now would be admitted.
    pub next_free: Instant,
    /// The end of the server-requested pause in force, if any.
    pub paused_until: Option<Instant>,
    /// Callers holding a place whose instant is still to come.
    pub queued: usize,
    /// The last quota the server reported (`…-Limit`, `q`).
    pub server_limit: Option<u64>,
    /// The last remaining count the server reported.
    pub server_remaining: Option<u64>,
    /// When the server last said its quota resets.
    pub server_reset: Option<Instant>,
    /// Requests that had to wait for their place.
    pub waits: u64,
    /// The total time those requests waited.
    pub total_waited: Duration,
    /// Requests refused because their place was further away than `max_wait`, and
    /// [`Limiter::try_acquire`](crate::Limiter::try_acquire) calls that found no free place.
    pub rejected: u64,
    /// Throttling responses seen (429, 403 with nothing remaining, 403 or 503 with
    /// `Retry-After`).
    pub throttled: u64,
    /// Pauses applied because the server said its quota was spent.
    pub pauses: u64,
    /// How the shared store behind the limiter is doing, for a backend that keeps its state
    /// in one (calm-ratelimit-redis); `None` for the in-process backend.
    pub store: Option<StoreStatus>,
    /// The rate an [`Adaptive`](crate::Adaptive) limiter paces at now, per second; `None`
    /// for a fixed limiter, and for an unthrottled start until its first throttle.
    pub learned_rate: Option<f64>,
}

impl Snapshot {
    /// How much of the server-requested pause was left when the snapshot was taken.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Limiter, Quota};
    /// use tokio::time::Instant;
    ///
    /// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(2).unwrap()));
    /// assert_eq!(limiter.snapshot().paused_for(), None);
    /// limiter.pause_until(Instant::now() + Duration::from_secs(30));
    /// assert_eq!(limiter.snapshot().paused_for(), Some(Duration::from_secs(30)));
    /// # }
    /// ```
    #[must_use]
    pub fn paused_for(&self) -> Option<Duration> {
        self.paused_until
            .filter(|end| *end > self.taken_at)
            .map(|end| end - self.taken_at)
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.taken_at;
        let mut s = f.debug_struct("Snapshot");
        s.field("next_free", &Relative(at, self.next_free));
        match self.paused_for() {
            Some(left) => s.field("paused", &format_args!("{:?} left", rounded(left))),
            None => s.field("paused", &format_args!("no")),
        };
        s.field("queued", &self.queued)
            .field("server_limit", &self.server_limit)
            .field("server_remaining", &self.server_remaining)
            .field("server_reset", &self.server_reset.map(|r| Relative(at, r)))
            .field("waits", &self.waits)
            .field("total_waited", &rounded(self.total_waited))
            .field("rejected", &self.rejected)
            .field("throttled", &self.throttled)
            .field("pauses", &self.pauses)
            .field("store", &self.store);
        match self.learned_rate {
            Some(rate) => s.field("learned_rate", &format_args!("{rate:.1}/s")),
            None => s.field("learned_rate", &format_args!("none")),
        };
        s.finish()
    }
}

/// `then` as seen from `now`: `now`, `in 1.2s` or `3s ago`.
struct Relative(Instant, Instant);

impl fmt::Debug for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Relative(now, then) = *self;
        if then > now {
            write!(f, "in {:?}", rounded(then - now))
        } else if then < now {
            write!(f, "{:?} ago", rounded(now - then))
        } else {
            f.write_str("now")
        }
    }
}

/// `d` to the millisecond, so `Debug` shows `1.2s` rather than `1.199999871s`.
fn rounded(d: Duration) -> Duration {
    let millis = d.as_micros().saturating_add(500) / 1000;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}
