//! [`Snapshot`]: what a dashboard needs to know about a limiter.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}
