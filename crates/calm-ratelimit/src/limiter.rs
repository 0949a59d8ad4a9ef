//! [`Limiter`]: the shared state behind every clone of a rate limit layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::time::{Instant, Sleep};

use crate::adaptive::{Adaptive, Cubic, InvalidAdaptive};
use crate::backend::{Admission, Backend, InProcess, Ticket};
use crate::error::{Denied, MaxWaitExceeded, Unavailable};
use crate::hints::{self, WallClock};
use crate::paced::Paced;
use crate::{Quota, Snapshot};

/// The shared state of a rate limit: quotas, the queue of waiting callers, server pauses.
///
/// `Clone` shares the state (an `Arc` inside): every clone, every [`RateLimit`](crate::RateLimit)
/// built from it and every task using it draw from one budget. Build one per API account and
/// hand it to [`RateLimitLayer::from_limiter`](crate::RateLimitLayer::from_limiter) to let several
/// stacks (say, two hosts of one API) share it.
///
/// Callers are served first come, first served: each reserves the earliest instant every
/// quota admits at the moment it asks, then sleeps once until it. See [`backend`](crate::backend)
/// for what a cancelled caller gives back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::{Limiter, Quota};
/// use tokio::time::Instant;
///
/// let n = |n| NonZeroU32::new(n).unwrap();
/// // 2 per second and 5 per 10 seconds, admitted atomically.
/// let limiter = Limiter::with_quotas([
///     Quota::per_second(n(2)),
///     Quota::per_period(n(5), Duration::from_secs(10)).unwrap(),
/// ]);
/// let start = Instant::now();
/// limiter.acquire().await.unwrap();
/// limiter.acquire().await.unwrap();
/// assert_eq!(start.elapsed(), Duration::from_secs(2));
/// # }
/// ```
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared<dyn Backend>>,
}

struct Shared<B: ?Sized> {
    server: Mutex<ServerState>,
    /// The learning state of an adaptive limiter.
    adaptive: Option<Mutex<Cubic>>,
    rejected: AtomicU64,
    throttled: AtomicU64,
    pauses: AtomicU64,
    backend: B,
}

#[derive(Default)]
struct ServerState {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Instant>,
}

impl Limiter {
    /// A limiter enforcing one quota, in this process.
    #[must_use]
    pub fn new(quota: Quota) -> Limiter {
        Limiter::with_backend(InProcess::new([quota]))
    }

    /// A limiter enforcing several quotas at once (say 10 per second and 5000 per hour): a
    /// request takes its place in all of them or in none. With no quota at all, only server
    /// pauses hold requests back.
    #[must_use]
    pub fn with_quotas(quotas: impl IntoIterator<Item = Quota>) -> Limiter {
        Limiter::with_backend(InProcess::new(quotas))
    }

    /// A limiter over a custom [`Backend`].
    #[must_use]
    pub fn with_backend<B: Backend>(backend: B) -> Limiter {
        Limiter::from_parts(backend, None)
    }

    /// A limiter that learns its rate from the server's throttling responses (see
    /// [`Adaptive`]), in this process, with `quotas` as hard ceilings.
    ///
    /// # Errors
    ///
    /// [`InvalidAdaptive`] when a setting of `adaptive` is out of range.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use calm_ratelimit::{Adaptive, Limiter};
    ///
    /// let limiter = Limiter::adaptive([], Adaptive::starting_at(10.0)).unwrap();
    /// assert_eq!(limiter.snapshot().learned_rate, Some(10.0));
    /// assert!(Limiter::adaptive([], Adaptive::starting_at(-1.0)).is_err());
    /// # }
    /// ```
    pub fn adaptive(
        quotas: impl IntoIterator<Item = Quota>,
        adaptive: Adaptive,
    ) -> Result<Limiter, InvalidAdaptive> {
        adaptive.validate()?;
        let quotas: Vec<Quota> = quotas.into_iter().collect();
        let cubic = Cubic::new(adaptive, ceiling(&quotas), Instant::now());
        let backend = InProcess::with_learned_rate(quotas, cubic.rate());
        Ok(Limiter::from_parts(backend, Some(cubic)))
    }

    /// A limiter over a custom [`Backend`] (calm-ratelimit-redis's, say) that also learns a
    /// rate from the server's throttling responses and paces at it in this process: a request
    /// goes once it has its place in the backend and at the learned rate. The backend's quotas
    /// stay ceilings and its state stays shared; the learned rate is this process's own.
    ///
    /// # Errors
    ///
    /// [`InvalidAdaptive`] when a setting of `adaptive` is out of range.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::backend::InProcess;
    /// use calm_ratelimit::{Adaptive, Limiter, Quota};
    ///
    /// let shared = InProcess::new([Quota::per_second(NonZeroU32::new(100).unwrap())]);
    /// let limiter = Limiter::adaptive_over(shared, Adaptive::starting_at(30.0)).unwrap();
    /// assert_eq!(limiter.snapshot().learned_rate, Some(30.0));
    /// assert_eq!(limiter.quotas().len(), 1);
    /// # }
    /// ```
    pub fn adaptive_over<B: Backend>(
        backend: B,
        adaptive: Adaptive,
    ) -> Result<Limiter, InvalidAdaptive> {
        adaptive.validate()?;
        let cubic = Cubic::new(adaptive, ceiling(backend.quotas()), Instant::now());
        let backend = Paced::new(backend, cubic.rate());
        Ok(Limiter::from_parts(backend, Some(cubic)))
    }

    fn from_parts<B: Backend>(backend: B, adaptive: Option<Cubic>) -> Limiter {
        let shared: Arc<Shared<dyn Backend>> = Arc::new(Shared {
            server: Mutex::new(ServerState::default()),
            adaptive: adaptive.map(Mutex::new),
            rejected: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
            backend,
        });
        Limiter { shared }
    }

    /// Whether `self` and `other` share one state (one is a clone of the other).
    ///
    /// ```
    /// use calm_ratelimit::{Limiter, Quota};
    /// use std::num::NonZeroU32;
    ///
    /// let quota = Quota::per_second(NonZeroU32::new(5).unwrap());
    /// let limiter = Limiter::new(quota);
    /// assert!(limiter.ptr_eq(&limiter.clone()));
    /// assert!(!limiter.ptr_eq(&Limiter::new(quota)));
    /// ```
    #[must_use]
    pub fn ptr_eq(&self, other: &Limiter) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Waits for a place, first come first served.
    ///
    /// The place is reserved when the future is first polled. Dropping the future before its
    /// instant gives the place back.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] only from a backend that keeps its state in a shared store, is told to
    /// fail closed, and cannot reach the store. The in-process backend never fails.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Limiter, Quota};
    /// use tokio::time::{timeout, Instant};
    ///
    /// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(1).unwrap()));
    /// let start = Instant::now();
    /// limiter.acquire().await.unwrap(); // at once
    ///
    /// // A caller that gives up after 100 ms gives its place (at 1 s) back...
    /// assert!(timeout(Duration::from_millis(100), limiter.acquire()).await.is_err());
    /// // ...so the next caller gets it, instead of the place at 2 s.
    /// limiter.acquire().await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn acquire(&self) -> Acquire {
        Acquire {
            limiter: self.clone(),
            waiter: Waiter::default(),
        }
    }

    /// Takes a place if one is free right now, without waiting.
    ///
    /// A backend that decides in a shared store (one round trip away) cannot answer at once:
    /// with it, `try_acquire` always refuses; use [`acquire`](Self::acquire) under a timeout.
    ///
    /// # Errors
    ///
    /// [`MaxWaitExceeded`] (with a `max_wait` of zero) naming when a place is free, if none is
    /// now. Nothing is taken then.
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
    /// assert!(limiter.try_acquire().is_ok());
    /// let err = limiter.try_acquire().unwrap_err();
    /// assert_eq!(err.wait(), Duration::from_millis(500));
    /// // Nothing was taken: the next free place is still the one the error names.
    /// assert_eq!(limiter.snapshot().next_free, err.available_at());
    /// assert_eq!(limiter.snapshot().rejected, 1);
    /// # }
    /// ```
    pub fn try_acquire(&self) -> Result<(), MaxWaitExceeded> {
        let now = Instant::now();
        match self.backend().reserve(Some(now), Waker::noop()) {
            Ok(ticket) if ticket.at().is_some() => Ok(()),
            // NOTE: a backend that decides remotely cannot answer without a round trip:
            // nothing is taken, and the refusal names its local estimate.
            Ok(ticket) => {
                self.backend().release(&ticket);
                let at = self.backend().state().next_free.max(now);
                Err(self.refuse(at, now, Duration::ZERO))
            }
            Err(at) => Err(self.refuse(at, now, Duration::ZERO)),
        }
    }

    /// Admits nobody before `until`: callers already waiting move behind it, in order.
    /// A pause never shortens a longer one already in force.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Limiter, Quota};
    /// use tokio::time::Instant;
    ///
    /// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// let start = Instant::now();
    /// let until = start + Duration::from_secs(5);
    /// limiter.pause_until(until);
    /// limiter.pause_until(start + Duration::from_secs(1)); // shorter: no effect
    /// assert_eq!(limiter.snapshot().paused_until, Some(until));
    ///
    /// limiter.acquire().await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_secs(5));
    /// # }
    /// ```
    pub fn pause_until(&self, until: Instant) {
        self.backend().pause_until(until);
    }

    /// The limiter's state now; see [`Snapshot`] for an example.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let state = self.backend().state();
        let server = self.server();
        Snapshot {
            taken_at: Instant::now(),
            next_free: state.next_free,
            paused_until: state.paused_until,
            queued: state.queued,
            server_limit: server.limit,
            server_remaining: server.remaining,
            server_reset: server.reset,
            waits: state.waits,
            total_waited: state.total_waited,
            store: state.store,
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            throttled: self.shared.throttled.load(Ordering::Relaxed),
            pauses: self.shared.pauses.load(Ordering::Relaxed),
            learned_rate: self.learned_rate(),
        }
    }

    /// The rate an adaptive limiter paces at now, per second.
    fn learned_rate(&self) -> Option<f64> {
        let adaptive = self.shared.adaptive.as_ref()?;
        adaptive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rate()
    }

    /// Learns from one response, if the limiter is adaptive.
    fn learn(&self, throttled: bool, host: &dyn fmt::Display) {
        let Some(adaptive) = &self.shared.adaptive else {
            return;
        };
        let mut cubic = adaptive.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = cubic.on_response(Instant::now(), throttled);
        // NOTE: handed to the backend under the lock, so two responses learned from at once
        // reach it in the order they were learned (no backend path takes this lock).
        if let Some(rate) = changed {
            self.backend().set_learned_rate(rate);
        }
        let now = cubic.rate();
        drop(cubic);
        if let Some(now) = now {
            tracing::Span::current().record("calm.rate_limit.learned_rate", now);
        }
        let Some(rate) = changed else {
            return;
        };
        crate::metrics::learned(host, rate);
        if throttled {
            tracing::debug!(
                host = %host,
                calm.rate_limit.learned_rate = rate,
                "throttled: the adaptive rate comes down"
            );
        }
    }

    /// The quotas the limiter enforces (as its backend reports them).
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{Limiter, Quota};
    ///
    /// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// assert_eq!(limiter.quotas()[0].to_string(), "10/s");
    /// ```
    pub fn quotas(&self) -> &[Quota] {
        self.backend().quotas()
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &self.shared.backend
    }

    fn server(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.shared
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A refusal of a place at `at` for a caller that asked at `asked_at` with the bound
    /// `max_wait`, counted, naming the server pause in force if the pause is what puts the
    /// place out of reach.
    pub(crate) fn refuse(
        &self,
        at: Instant,
        asked_at: Instant,
        max_wait: Duration,
    ) -> MaxWaitExceeded {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        let deadline = asked_at.checked_add(max_wait);
        let paused_until = self
            .backend()
            .state()
            .paused_until
            .filter(|end| deadline.is_some_and(|d| *end > d));
        MaxWaitExceeded::new(at, asked_at, max_wait).paused_until_at(paused_until)
    }

    /// A refusal of a place at `at` for a caller with `bound` (none: asked now, unbounded).
    pub(crate) fn refuse_bound(&self, at: Instant, bound: Option<Bound>) -> MaxWaitExceeded {
        match bound {
            Some(b) => self.refuse(at, b.asked_at, b.max_wait()),
            None => self.refuse(at, Instant::now(), Duration::MAX),
        }
    }

    /// Applies what a response says about the server's quota.
    pub(crate) fn observe(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        clock: &WallClock,
        max_pause: Duration,
        host: &dyn fmt::Display,
    ) {
        // NOTE: most responses carry no hint; one pass over the header names spares them the
        // wall-clock read and the dozen lookups of the parsers.
        let hint = (status == StatusCode::TOO_MANY_REQUESTS || hints::may_carry_hint(headers))
            .then(|| hints::read(headers, status, clock.now()))
            .flatten();
        let throttled = status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
            || hint.as_ref().is_some_and(|h| h.throttled);
        self.learn(throttled, host);
        let Some(hint) = hint else {
            return;
        };
        let now = Instant::now();
        if hint.remaining.is_some() || hint.reset.is_some() || hint.limit.is_some() {
            let mut server = self.server();
            server.limit = hint.limit.or(server.limit);
            server.remaining = hint.remaining.or(server.remaining);
            server.reset = hint.reset.map(|r| now + r).or(server.reset);
        }
        if hint.throttled {
            self.shared.throttled.fetch_add(1, Ordering::Relaxed);
        }
        let Some(asked) = hint.pause() else { return };
        let pause = asked.min(max_pause);
        if pause.is_zero() {
            return;
        }
        let Some(until) = now.checked_add(pause) else {
            return;
        };
        // NOTE: a hint that does not move the end of the pause in force (the same 429 seen by
        // several callers) is neither counted nor logged again.
        if !self.backend().pause_until(until) {
            return;
        }
        self.shared.pauses.fetch_add(1, Ordering::Relaxed);
        let header = hint.source().unwrap_or("status");
        let value = hint
            .source()
            .and_then(|name| headers.get(name))
            .and_then(|value| value.to_str().ok());
        tracing::warn!(
            host = %host,
            pause = ?pause,
            requested = ?asked,
            header,
            value,
            status = status.as_u16(),
            "server quota spent: pausing every caller of this limiter",
        );
        crate::metrics::paused(host, header);
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// The lowest sustained rate of `quotas`, per second (infinite without one).
fn ceiling(quotas: &[Quota]) -> f64 {
    quotas
        .iter()
        .map(|q| 1.0 / q.interval().as_secs_f64())
        .fold(f64::INFINITY, f64::min)
}

/// The future of [`Limiter::acquire`]: resolves when the caller's place has come.
///
/// See [`Limiter::acquire`] for an example, cancellation included.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Acquire {
    limiter: Limiter,
    waiter: Waiter,
}

impl Future for Acquire {
    type Output = Result<(), Unavailable>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.waiter
            .poll_acquire(&this.limiter, cx)
            .map_err(|denied| match denied {
                Denied::Unavailable(e) => e,
                // NOTE: without a deadline only a misbehaving backend refuses.
                Denied::MaxWait(e) => Unavailable::new(e),
            })
    }
}

/// How long a caller accepts to wait: an absolute deadline, and the bound it came from (for
/// the error).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bound {
    pub(crate) asked_at: Instant,
    pub(crate) deadline: Instant,
}

impl Bound {
    fn max_wait(&self) -> Duration {
        self.deadline.saturating_duration_since(self.asked_at)
    }
}

/// A caller's progress towards its place: nothing held, or a ticket and a sleep.
///
/// Shared by [`Acquire`] and the service; the sleep is allocated at the first wait and reused.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    held: Option<Held>,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// A ticket whose instant is still to come. Dropping it gives the place back.
#[derive(Debug)]
struct Held {
    limiter: Limiter,
    ticket: Ticket,
    bound: Option<Bound>,
    /// False once the place has been taken: there is nothing left to give back.
    give_back: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.give_back {
            self.limiter.backend().release(&self.ticket);
        }
    }
}

impl Waiter {
    /// Reserves a place. `Ok(true)` when it is free at once (nothing is held then),
    /// `Ok(false)` when it is held and [`poll_wait`](Self::poll_wait) must wait for it, or the
    /// refusal when it lies past the bound (nothing is taken).
    ///
    /// `waker` is kept by the backend; with a waker that is not the waiting task's (a noop
    /// one, say), the first `poll_wait` registers the right one.
    pub(crate) fn reserve(
        &mut self,
        limiter: &Limiter,
        bound: Option<Bound>,
        waker: &Waker,
    ) -> Result<bool, Denied> {
        debug_assert!(self.held.is_none());
        match limiter.backend().reserve(bound.map(|b| b.deadline), waker) {
            // NOTE: a place taken on the spot needs no clock read to know it is due.
            Ok(ticket) if ticket.is_admitted() => Ok(true),
            Ok(ticket) if ticket.at().is_some_and(|at| at <= Instant::now()) => {
                // NOTE: due by the time it came back: taken. The backend still holds it (it
                // was not due by its own clock), so it is told; a past place is not refunded.
                limiter.backend().release(&ticket);
                Ok(true)
            }
            Ok(ticket) => {
                self.held = Some(Held {
                    limiter: limiter.clone(),
                    ticket,
                    bound,
                    give_back: true,
                });
                Ok(false)
            }
            Err(at) => Err(limiter.refuse_bound(at, bound).into()),
        }
    }

    /// Reserves a place if none is held, then waits for it (for [`Acquire`]).
    fn poll_acquire(
        &mut self,
        limiter: &Limiter,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Denied>> {
        let mut known = None;
        if self.held.is_none() {
            if self.reserve(limiter, None, cx.waker())? {
                return Poll::Ready(Ok(()));
            }
            // NOTE: the backend has this task's waker and told this instant: no check needed.
            known = self.held.as_ref().and_then(|h| h.ticket.at());
        }
        self.wait(known, cx)
    }

    /// Waits for the place held. Ready once it has come (nothing is held afterwards), or with
    /// the error if a pause moved it past the bound (the place is given back) or the backend
    /// refused it.
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Denied>> {
        self.wait(None, cx)
    }

    fn wait(
        &mut self,
        mut known: Option<Instant>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Denied>> {
        loop {
            let Some(held) = &mut self.held else {
                return Poll::Ready(Ok(()));
            };
            let at = match known.take() {
                Some(at) => at,
                None => match held.limiter.backend().check(&held.ticket, cx.waker()) {
                    // NOTE: a backend that reports an instant already past is taken at its
                    // word.
                    Admission::WaitUntil(at) if at > Instant::now() => at,
                    Admission::WaitUntil(_) => {
                        // NOTE: due by now, though the backend still holds it: dropping the
                        // hold tells it (`release`), which refunds nothing for a past place.
                        self.held = None;
                        return Poll::Ready(Ok(()));
                    }
                    Admission::Admitted => {
                        held.give_back = false;
                        self.held = None;
                        return Poll::Ready(Ok(()));
                    }
                    // NOTE: the backend keeps the waker until it has decided.
                    Admission::Deciding => return Poll::Pending,
                    Admission::Refused(at) => {
                        held.give_back = false;
                        let (limiter, bound) = (held.limiter.clone(), held.bound);
                        self.held = None;
                        return Poll::Ready(Err(limiter.refuse_bound(at, bound).into()));
                    }
                    Admission::Unavailable(e) => {
                        held.give_back = false;
                        self.held = None;
                        return Poll::Ready(Err(Denied::Unavailable(e)));
                    }
                },
            };
            if let Some(bound) = held.bound.filter(|b| at > b.deadline) {
                // NOTE: a server pause moved the place past the caller's bound; the backend
                // woke this task for it.
                let limiter = held.limiter.clone();
                self.held = None;
                return Poll::Ready(Err(limiter.refuse_bound(at, Some(bound)).into()));
            }
            let sleep = match &mut self.sleep {
                Some(sleep) => {
                    if sleep.deadline() != at {
                        sleep.as_mut().reset(at);
                    }
                    sleep
                }
                None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
            };
            ready!(sleep.as_mut().poll(cx));
        }
    }
}
