//! Where the limiter's state lives: the [`Backend`] trait and the in-process [`InProcess`] GCRA.
//!
//! A [`Limiter`](crate::Limiter) asks its backend for *tickets*: a ticket names the instant
//! its holder may go. The default backend, [`InProcess`], keeps every quota's GCRA state and
//! the queue of outstanding tickets under one mutex, so several quotas are admitted
//! atomically and callers are served in the order they asked.
//!
//! # Reservations, cancellation and what is refunded
//!
//! [`InProcess`] keeps, per quota, the GCRA *theoretical arrival time* (TAT) of everything
//! already admitted (the *base*), and a FIFO queue of outstanding tickets whose instants are
//! still in the future. A new ticket is scheduled behind the whole queue: at the earliest
//! instant every quota admits it (and not before a server pause ends), and every quota's TAT
//! is advanced as if it had gone then. A ticket whose instant has come is folded into the base
//! and is final.
//!
//! [`release`](Backend::release) of a ticket *before its instant* removes it from the queue
//! and replays GCRA from the base over the tickets that remain, in their order, as if the
//! released one had never been asked for. Every ticket behind it therefore moves up (by one
//! emission interval of the binding quota when the queue is saturated), and the holders whose
//! instant changed are woken to sleep again until their new instant. Exactly this is refunded:
//! the released ticket's place in every quota. Nothing else changes: no ticket moves before
//! the moment it was asked for, before the release happened, or before a server pause ends.
//! A ticket whose instant has passed is not refunded: its slot has elapsed, whether or not the
//! request went out. A ticket refused for `max_wait` was never taken.
//!
//! A server pause ([`pause_until`](Backend::pause_until)) replays the queue the same way with
//! the pause as a floor: tickets due before the pause ends move to the end of the pause, keep
//! their order, and stay spaced by the quotas.
//!
//! # Writing a backend
//!
//! The trait is small and synchronous: every method is a short critical section, and the
//! waiting itself (a tokio sleep until the ticket's instant) is done by the caller. A store
//! shared between processes (the planned Redis backend) cannot answer synchronously; it will
//! come with an asynchronous variant of this trait that the service drives instead. This trait
//! is the in-process extension point, for example for a backend that also logs or exports
//! metrics.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use crate::Quota;

/// The state of a limiter: reserve places, release them, pause everyone.
///
/// Every method receives `now` from the caller (tokio's clock), so a backend never reads a
/// clock itself and tests can drive it with any instants. See the [module docs](self) for the
/// contract, and [`InProcess`] for the default implementation.
///
/// # Examples
///
/// A backend that counts the places it hands out and leaves the rest to [`InProcess`]:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::task::Waker;
/// use calm_ratelimit::backend::{Admission, Backend, BackendState, InProcess, Ticket};
/// use calm_ratelimit::{Limiter, Quota};
/// use tokio::time::Instant;
///
/// #[derive(Debug)]
/// struct Counting {
///     inner: InProcess,
///     reserved: Arc<AtomicU64>,
/// }
///
/// impl Backend for Counting {
///     fn reserve(
///         &self,
///         now: Instant,
///         deadline: Option<Instant>,
///         waker: &Waker,
///     ) -> Result<Ticket, Instant> {
///         let ticket = self.inner.reserve(now, deadline, waker)?;
///         self.reserved.fetch_add(1, Ordering::Relaxed);
///         Ok(ticket)
///     }
///     fn check(&self, ticket: &Ticket, now: Instant, waker: &Waker) -> Admission {
///         self.inner.check(ticket, now, waker)
///     }
///     fn release(&self, ticket: &Ticket, now: Instant) {
///         self.inner.release(ticket, now)
///     }
///     fn pause_until(&self, until: Instant, now: Instant) {
///         self.inner.pause_until(until, now)
///     }
///     fn state(&self, now: Instant) -> BackendState {
///         self.inner.state(now)
///     }
/// }
///
/// let reserved = Arc::new(AtomicU64::new(0));
/// let limiter = Limiter::with_backend(Counting {
///     inner: InProcess::new([Quota::per_second(NonZeroU32::new(10).unwrap())]),
///     reserved: Arc::clone(&reserved),
/// });
/// limiter.acquire().await;
/// limiter.acquire().await;
/// assert_eq!(reserved.load(Ordering::Relaxed), 2);
/// assert_eq!(limiter.snapshot().waits, 1);
/// # }
/// ```
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// Reserves the earliest place every quota admits, behind every outstanding ticket.
    ///
    /// Returns `Err(instant)` without taking anything when that place is after `deadline`.
    /// A ticket whose instant is not after `now` is admitted at once; otherwise the backend
    /// keeps `waker` and wakes it when the ticket's instant changes.
    fn reserve(
        &self,
        now: Instant,
        deadline: Option<Instant>,
        waker: &Waker,
    ) -> Result<Ticket, Instant>;

    /// Tells whether `ticket`'s instant has come, or until when its holder must wait
    /// (it may have moved since it was issued). Stores `waker` for later changes.
    fn check(&self, ticket: &Ticket, now: Instant, waker: &Waker) -> Admission;

    /// Gives back a ticket whose holder no longer wants it. A ticket whose instant has passed
    /// is not refunded.
    fn release(&self, ticket: &Ticket, now: Instant);

    /// Admits nobody before `until`. A pause never shortens an earlier, longer one.
    fn pause_until(&self, until: Instant, now: Instant);

    /// What a dashboard needs to know, as of `now`.
    fn state(&self, now: Instant) -> BackendState;
}

/// A reserved place: an instant, and an id that only its backend interprets.
///
/// # Examples
///
/// ```
/// use calm_ratelimit::backend::Ticket;
/// use tokio::time::Instant;
///
/// let at = Instant::now();
/// let ticket = Ticket::new(7, at);
/// assert_eq!((ticket.id(), ticket.at()), (7, at));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    id: u64,
    at: Instant,
}

impl Ticket {
    /// A ticket for the place at `at`; `id` is the backend's own reference to it.
    #[must_use]
    pub const fn new(id: u64, at: Instant) -> Ticket {
        Ticket { id, at }
    }

    /// The backend's reference to this place.
    #[must_use]
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// The instant the place was scheduled for when the ticket was issued.
    #[must_use]
    pub const fn at(&self) -> Instant {
        self.at
    }
}

/// The answer of [`Backend::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The ticket's instant has come: go.
    Admitted,
    /// Sleep until this instant, then check again.
    WaitUntil(Instant),
}

/// A backend's view of its state, for [`Snapshot`](crate::Snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendState {
    /// The instant a request asking now would be admitted.
    pub next_free: Instant,
    /// The end of the current server pause, if one is in force.
    pub paused_until: Option<Instant>,
    /// Outstanding tickets whose instant is still in the future.
    pub queued: usize,
    /// Admitted requests that had to wait for their place.
    pub waits: u64,
    /// The total time those requests waited, from asking to their instant.
    pub total_waited: Duration,
}

impl BackendState {
    /// A state with only `next_free` known: nothing queued or waited, no pause.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_ratelimit::backend::BackendState;
    /// use tokio::time::Instant;
    ///
    /// let mut state = BackendState::new(Instant::now());
    /// assert_eq!((state.queued, state.waits, state.paused_until), (0, 0, None));
    /// state.total_waited = Duration::from_secs(3); // fill in what the backend knows
    /// ```
    #[must_use]
    pub const fn new(next_free: Instant) -> BackendState {
        BackendState {
            next_free,
            paused_until: None,
            queued: 0,
            waits: 0,
            total_waited: Duration::ZERO,
        }
    }
}

/// The default backend: GCRA over every quota at once, in this process.
///
/// See the [module docs](self) for how reservations, releases and pauses work.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use calm_ratelimit::{backend::InProcess, Limiter, Quota};
///
/// let per_second = Quota::per_second(NonZeroU32::new(10).unwrap());
/// let limiter = Limiter::with_backend(InProcess::new([per_second]));
/// assert!(limiter.try_acquire().is_ok());
/// ```
pub struct InProcess {
    origin: Instant,
    quotas: Box<[Quota]>,
    state: Mutex<State>,
}

/// Ticket id of a place admitted on the spot: it never enters the queue.
const ON_THE_SPOT: u64 = 0;

// NOTE: times inside the state are nanoseconds since `origin`; a u64 lasts 584 years.
#[derive(Debug)]
struct State {
    lanes: Box<[Lane]>,
    queue: VecDeque<Entry>,
    next_id: u64,
    paused_until: u64,
    waits: u64,
    waited: u64,
}

/// One quota's GCRA state.
///
/// NOTE: the tolerance and the TATs are u128: with a huge period or burst they pass u64
/// nanoseconds, and saturating them would turn `tail - tolerance` into 0, i.e. no limit.
#[derive(Debug, Clone, Copy)]
struct Lane {
    interval: u128,
    tolerance: u128,
    /// TAT after every admitted request.
    base: u128,
    /// TAT after every admitted and every queued request.
    tail: u128,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    asked: u64,
    at: u64,
    waker: Option<Waker>,
}

impl InProcess {
    /// A backend enforcing every quota in `quotas` at once. With no quota at all, only server
    /// pauses hold requests back.
    #[must_use]
    pub fn new(quotas: impl IntoIterator<Item = Quota>) -> InProcess {
        let quotas: Box<[Quota]> = quotas.into_iter().collect();
        let lanes = quotas
            .iter()
            .map(|q| Lane {
                interval: u128::from(q.interval_nanos()),
                tolerance: q.tolerance_nanos(),
                base: 0,
                tail: 0,
            })
            .collect();
        InProcess {
            origin: Instant::now(),
            quotas,
            state: Mutex::new(State {
                lanes,
                queue: VecDeque::new(),
                next_id: ON_THE_SPOT + 1,
                paused_until: 0,
                waits: 0,
                waited: 0,
            }),
        }
    }

    /// The quotas this backend enforces.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{backend::InProcess, Quota};
    ///
    /// let n = |n| NonZeroU32::new(n).unwrap();
    /// let quotas = [Quota::per_second(n(10)), Quota::per_hour(n(5000))];
    /// assert_eq!(InProcess::new(quotas).quotas(), quotas);
    /// assert!(InProcess::new([]).quotas().is_empty());
    /// ```
    #[must_use]
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    fn nanos(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin);
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // NOTE: nothing panics while holding the lock (wakers are woken after it is released),
        // and every update leaves the state consistent, so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Folds every ticket whose instant has come into the base.
    fn settle(&mut self, now: u64) {
        while let Some(front) = self.queue.front() {
            if front.at > now {
                break;
            }
            let (at, asked) = (front.at, front.asked);
            self.queue.pop_front();
            for lane in self.lanes.iter_mut() {
                lane.base = lane.base.max(u128::from(at)).saturating_add(lane.interval);
            }
            if at > asked {
                self.waits += 1;
                self.waited = self.waited.saturating_add(at - asked);
            }
        }
    }

    /// The earliest instant every quota admits the next request, not before `floor`.
    fn earliest(&self, floor: u64) -> u64 {
        self.lanes
            .iter()
            .fold(floor.max(self.paused_until), |at, lane| {
                let earliest = lane.tail.saturating_sub(lane.tolerance);
                at.max(u64::try_from(earliest).unwrap_or(u64::MAX))
            })
    }

    fn advance(&mut self, at: u64) {
        for lane in self.lanes.iter_mut() {
            lane.tail = lane.tail.max(u128::from(at)).saturating_add(lane.interval);
        }
    }

    /// Replays GCRA from the base over the queue (after a release or a new pause), and settles
    /// what became due. Returns the wakers of the holders whose instant changed, to be woken
    /// once the lock is released.
    fn reschedule(&mut self, now: u64) -> Vec<Waker> {
        let mut moved = Vec::new();
        for lane in self.lanes.iter_mut() {
            lane.tail = lane.base;
        }
        for i in 0..self.queue.len() {
            let at = self.earliest(now.max(self.queue[i].asked));
            self.advance(at);
            let entry = &mut self.queue[i];
            if entry.at != at {
                entry.at = at;
                moved.extend(entry.waker.clone());
            }
        }
        self.settle(now);
        moved
    }

    fn find(&self, id: u64) -> Option<usize> {
        // NOTE: ids grow in queue order and removals keep the order, so the queue is sorted.
        self.queue.binary_search_by_key(&id, |e| e.id).ok()
    }
}

impl Backend for InProcess {
    fn reserve(
        &self,
        now: Instant,
        deadline: Option<Instant>,
        waker: &Waker,
    ) -> Result<Ticket, Instant> {
        let n = self.nanos(now);
        let mut st = self.lock();
        st.settle(n);
        let at = st.earliest(n);
        if at <= n {
            // NOTE: a ticket behind a queued one is never due at once (the queue's last
            // instant binds it), so the queue is empty here and base may catch up with tail.
            debug_assert!(st.queue.is_empty());
            for lane in st.lanes.iter_mut() {
                lane.tail = lane.tail.max(u128::from(n)).saturating_add(lane.interval);
                lane.base = lane.tail;
            }
            return Ok(Ticket::new(ON_THE_SPOT, now));
        }
        if let Some(deadline) = deadline {
            let at = self.instant(at);
            if at > deadline {
                return Err(at);
            }
        }
        st.advance(at);
        let id = st.next_id;
        st.next_id += 1;
        st.queue.push_back(Entry {
            id,
            asked: n,
            at,
            waker: Some(waker.clone()),
        });
        drop(st);
        Ok(Ticket::new(id, self.instant(at)))
    }

    fn check(&self, ticket: &Ticket, now: Instant, waker: &Waker) -> Admission {
        if ticket.id == ON_THE_SPOT {
            return Admission::Admitted;
        }
        let n = self.nanos(now);
        let mut st = self.lock();
        st.settle(n);
        let Some(i) = st.find(ticket.id) else {
            return Admission::Admitted;
        };
        let entry = &mut st.queue[i];
        match &entry.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => entry.waker = Some(waker.clone()),
        }
        let at = entry.at;
        drop(st);
        Admission::WaitUntil(self.instant(at))
    }

    fn release(&self, ticket: &Ticket, now: Instant) {
        if ticket.id == ON_THE_SPOT {
            return;
        }
        let n = self.nanos(now);
        let mut st = self.lock();
        st.settle(n);
        let Some(i) = st.find(ticket.id) else {
            return;
        };
        st.queue.remove(i);
        let moved = st.reschedule(n);
        drop(st);
        moved.into_iter().for_each(Waker::wake);
    }

    fn pause_until(&self, until: Instant, now: Instant) {
        let (n, u) = (self.nanos(now), self.nanos(until));
        let mut st = self.lock();
        st.settle(n);
        if u <= n || u <= st.paused_until {
            return;
        }
        st.paused_until = u;
        let moved = st.reschedule(n);
        drop(st);
        moved.into_iter().for_each(Waker::wake);
    }

    fn state(&self, now: Instant) -> BackendState {
        let n = self.nanos(now);
        let mut st = self.lock();
        st.settle(n);
        let mut state = BackendState::new(self.instant(st.earliest(n)));
        state.paused_until = (st.paused_until > n).then(|| self.instant(st.paused_until));
        state.queued = st.queue.len();
        state.waits = st.waits;
        state.total_waited = Duration::from_nanos(st.waited);
        state
    }
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queued = self.lock().queue.len();
        f.debug_struct("InProcess")
            .field("quotas", &self.quotas)
            .field("queued", &queued)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn noop() -> &'static Waker {
        Waker::noop()
    }

    #[test]
    fn spaces_requests_by_the_interval() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let ats: Vec<_> = (0..4)
            .map(|_| b.reserve(t0, None, noop()).unwrap().at() - t0)
            .collect();
        assert_eq!(ats, [ms(0), ms(100), ms(200), ms(300)]);
    }

    #[test]
    fn huge_periods_and_bursts_do_not_overflow_into_no_limit() {
        // 5 at once, then one every 200 years: interval × (burst - 1) and the TAT after three
        // requests are past u64 nanoseconds.
        let period = Duration::from_secs(200 * 365 * 86_400);
        let q = Quota::with_period(period).unwrap().burst(n(5));
        let b = InProcess::new([q]);
        let t0 = b.origin;
        for _ in 0..5 {
            assert_eq!(b.reserve(t0, None, noop()).unwrap().at(), t0);
        }
        assert_eq!(b.reserve(t0, None, noop()).unwrap().at(), t0 + period);
        assert_eq!(b.reserve(t0, None, noop()).unwrap().at(), t0 + period * 2);
        assert!(b.reserve(t0, Some(t0 + ms(1)), noop()).is_err());
    }

    #[test]
    fn deadline_refuses_without_taking() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        b.reserve(t0, None, noop()).unwrap();
        assert_eq!(b.reserve(t0, Some(t0 + ms(50)), noop()), Err(t0 + ms(100)));
        assert_eq!(b.reserve(t0, None, noop()).unwrap().at(), t0 + ms(100));
    }

    #[test]
    fn release_moves_later_tickets_up() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let tickets: Vec<_> = (0..4)
            .map(|_| b.reserve(t0, None, noop()).unwrap())
            .collect();
        b.release(&tickets[1], t0 + ms(10));
        assert_eq!(
            b.check(&tickets[2], t0 + ms(10), noop()),
            Admission::WaitUntil(t0 + ms(100))
        );
        assert_eq!(
            b.check(&tickets[3], t0 + ms(10), noop()),
            Admission::WaitUntil(t0 + ms(200))
        );
        assert_eq!(b.state(t0 + ms(10)).next_free, t0 + ms(300));
        assert_eq!(
            b.check(&tickets[2], t0 + ms(100), noop()),
            Admission::Admitted
        );
    }

    #[test]
    fn release_after_the_instant_refunds_nothing() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        b.reserve(t0, None, noop()).unwrap();
        let t1 = b.reserve(t0, None, noop()).unwrap();
        b.release(&t1, t0 + ms(150));
        assert_eq!(b.state(t0 + ms(150)).next_free, t0 + ms(200));
    }

    #[test]
    fn pause_moves_queue_behind_it_in_order() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let tickets: Vec<_> = (0..3)
            .map(|_| b.reserve(t0, None, noop()).unwrap())
            .collect();
        b.pause_until(t0 + ms(1000), t0 + ms(50));
        assert_eq!(
            b.check(&tickets[1], t0 + ms(50), noop()),
            Admission::WaitUntil(t0 + ms(1000))
        );
        assert_eq!(
            b.check(&tickets[2], t0 + ms(50), noop()),
            Admission::WaitUntil(t0 + ms(1100))
        );
        let state = b.state(t0 + ms(50));
        assert_eq!(state.paused_until, Some(t0 + ms(1000)));
        assert_eq!(state.queued, 2);
        // A shorter pause does not shorten it.
        b.pause_until(t0 + ms(500), t0 + ms(60));
        assert_eq!(b.state(t0 + ms(60)).paused_until, Some(t0 + ms(1000)));
    }

    #[test]
    fn no_quota_means_only_pauses_hold_back() {
        let b = InProcess::new([]);
        let t0 = b.origin;
        for _ in 0..100 {
            assert_eq!(b.reserve(t0, None, noop()).unwrap().at(), t0);
        }
        b.pause_until(t0 + ms(10), t0);
        assert_eq!(b.reserve(t0, None, noop()).unwrap().at(), t0 + ms(10));
    }

    #[test]
    fn waits_are_counted_when_due() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        for _ in 0..3 {
            b.reserve(t0, None, noop()).unwrap();
        }
        let s = b.state(t0 + ms(250));
        assert_eq!((s.waits, s.total_waited, s.queued), (2, ms(300), 0));
    }
}
