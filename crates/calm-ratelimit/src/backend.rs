//! Where the limiter's state lives: the [`Backend`] trait and the in-process [`InProcess`] GCRA.
//!
//! A [`Limiter`](crate::Limiter) asks its backend for *tickets*: a ticket names the instant
//! its holder may go. The default backend, [`InProcess`], keeps every quota's GCRA state and
//! the queue of outstanding tickets under one mutex, so several quotas are admitted
//! atomically and callers are served in the order they asked.
//!
//! # The clock
//!
//! A backend reads the time itself, *inside* its critical section ([`InProcess`] reads
//! [`tokio::time::Instant::now`] after taking its mutex), and never records an instant earlier
//! than one it recorded before. A caller that waited for the lock is therefore never recorded
//! as having gone earlier than it did: reading the clock before the lock would let a request
//! held up by contention be booked into a slot that had already passed, and go closer to the
//! previous one than the quota allows. Tests drive a backend on paused tokio time
//! (`tokio::time::pause` and `advance`).
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
//! and replays GCRA over the tickets behind it, in their order, as if the released one had
//! never been asked for. Every ticket behind it therefore moves up (by one emission interval of
//! the binding quota when the queue is saturated), never later. Exactly this is refunded: the
//! released ticket's place in every quota. Nothing else changes: no ticket moves before the
//! moment it was asked for, before the release happened, or before a server pause ends.
//! A ticket whose instant has passed is not refunded: its slot has elapsed, whether or not the
//! request went out. A ticket refused for its deadline was never taken.
//!
//! A server pause ([`pause_until`](Backend::pause_until)) replays the queue the same way with
//! the pause as a floor: tickets due before the pause ends move to the end of the pause, keep
//! their order, and stay spaced by the quotas.
//!
//! # Who is woken
//!
//! Waking is O(1) per admission or cancellation, so a queue of `n` waiters costs O(n)
//! wake-ups in all, whatever its callers give up. Each ticket remembers the instant its holder
//! was last told (by [`reserve`](Backend::reserve) or [`check`](Backend::check)) and sleeps
//! until. A release or a pause moves instants but wakes only:
//!
//! - the new *head* of the queue, when the head changed (admitted or released) and its instant
//!   is now earlier than the one its holder sleeps until: tickets behind it cannot go before it
//!   anyway, and each is woken in turn when it becomes the head;
//! - a ticket whose instant has come while its holder sleeps past it (it went due because the
//!   tickets before it left);
//! - a ticket that a pause moved past its deadline, so its holder fails at once instead of
//!   sleeping into the pause.
//!
//! A holder whose instant moved *later* (a pause) is not woken: it wakes at the instant it was
//! told, checks, and sleeps again. So a holder told to wait until `t` must
//! [`check`](Backend::check) again at `t`, and whenever woken.
//!
//! # Writing a backend
//!
//! The trait is small and synchronous: every method is a short critical section, and the
//! waiting itself (a tokio sleep until the ticket's instant) is done by the caller.
//!
//! A backend whose state lives elsewhere (a store shared by several processes, one round
//! trip away) answers [`reserve`](Backend::reserve) with a [`Ticket::deciding`] ticket and
//! starts the round trip itself (a task of its own); [`check`](Backend::check) answers
//! [`Admission::Deciding`] and keeps the waker until the answer is in, then the instant
//! ([`Admission::WaitUntil`]), a refusal past the deadline ([`Admission::Refused`]), or
//! [`Admission::Unavailable`] when the store is out of reach and the backend fails closed.
//! The caller never polls the store: it sleeps until it is woken. calm-ratelimit-redis is
//! such a backend.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Unavailable;
use crate::Quota;

/// The state of a limiter: reserve places, release them, pause everyone.
///
/// A backend reads tokio's clock itself, inside its critical section, and records instants
/// that never go backwards (see [the clock](self#the-clock)). See the [module docs](self) for
/// the contract, and [`InProcess`] for the default implementation.
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
///     fn reserve(&self, deadline: Option<Instant>, waker: &Waker) -> Result<Ticket, Instant> {
///         let ticket = self.inner.reserve(deadline, waker)?;
///         self.reserved.fetch_add(1, Ordering::Relaxed);
///         Ok(ticket)
///     }
///     fn check(&self, ticket: &Ticket, waker: &Waker) -> Admission {
///         self.inner.check(ticket, waker)
///     }
///     fn release(&self, ticket: &Ticket) {
///         self.inner.release(ticket)
///     }
///     fn pause_until(&self, until: Instant) -> bool {
///         self.inner.pause_until(until)
///     }
///     fn state(&self) -> BackendState {
///         self.inner.state()
///     }
/// }
///
/// let reserved = Arc::new(AtomicU64::new(0));
/// let limiter = Limiter::with_backend(Counting {
///     inner: InProcess::new([Quota::per_second(NonZeroU32::new(10).unwrap())]),
///     reserved: Arc::clone(&reserved),
/// });
/// limiter.acquire().await.unwrap();
/// limiter.acquire().await.unwrap();
/// assert_eq!(reserved.load(Ordering::Relaxed), 2);
/// assert_eq!(limiter.snapshot().waits, 1);
/// # }
/// ```
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// Reserves the earliest place every quota admits, behind every outstanding ticket, as of
    /// the backend's clock read inside its critical section.
    ///
    /// Returns `Err(instant)` without taking anything when that place is after `deadline`;
    /// the deadline is kept with the ticket, and a pause that later moves the ticket past it
    /// wakes the holder. A ticket whose instant is not after the backend's clock is admitted
    /// at once; otherwise the backend keeps `waker` and wakes it as the
    /// [module docs](self#who-is-woken) say.
    fn reserve(&self, deadline: Option<Instant>, waker: &Waker) -> Result<Ticket, Instant>;

    /// Tells whether `ticket`'s instant has come, or until when its holder must wait
    /// (it may have moved since it was issued). Stores `waker` for later changes, and records
    /// the instant returned as the one the holder now sleeps until.
    fn check(&self, ticket: &Ticket, waker: &Waker) -> Admission;

    /// Gives back a ticket whose holder no longer wants it. A ticket whose instant has passed
    /// is not refunded.
    fn release(&self, ticket: &Ticket);

    /// Admits nobody before `until`. A pause never shortens an earlier, longer one.
    ///
    /// Returns whether the end of the pause moved (`false` for an instant already past or not
    /// after the pause in force).
    fn pause_until(&self, until: Instant) -> bool;

    /// What a dashboard needs to know, as of the backend's clock.
    fn state(&self) -> BackendState;

    /// The quotas the backend enforces, for `Debug` output and dashboards (none by default).
    fn quotas(&self) -> &[Quota] {
        &[]
    }

    /// Paces at most `per_second` requests per second from now on, on top of the quotas: the
    /// rate an [`Adaptive`](crate::Adaptive) limiter learned. Returns whether the backend
    /// paces by a learned rate at all (by default it does not, and the call does nothing).
    fn set_learned_rate(&self, per_second: f64) -> bool {
        let _ = per_second;
        false
    }
}
/// A reserved place: an id that only its backend interprets, and the instant of the place
/// when the backend knew it at once.
///
/// A backend that decides elsewhere (a shared store, one network round trip away) hands out
/// [`deciding`](Ticket::deciding) tickets, whose instant comes later through
/// [`Backend::check`].
///
/// # Examples
///
/// ```
/// use calm_ratelimit::backend::Ticket;
/// use tokio::time::Instant;
///
/// let at = Instant::now();
/// let ticket = Ticket::new(7, at);
/// assert_eq!((ticket.id(), ticket.at()), (7, Some(at)));
/// assert_eq!(Ticket::deciding(8).at(), None);
/// assert!(Ticket::admitted(9, at).is_admitted());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    id: u64,
    at: Option<Instant>,
    admitted: bool,
}

impl Ticket {
    /// A ticket for the place at `at`; `id` is the backend's own reference to it.
    #[must_use]
    pub const fn new(id: u64, at: Instant) -> Ticket {
        Ticket {
            id,
            at: Some(at),
            admitted: false,
        }
    }

    /// A ticket for a place taken on the spot, at `at` (the backend's "now"): its holder goes
    /// at once, without reading the clock to compare, and never asks [`Backend::check`].
    #[must_use]
    pub const fn admitted(id: u64, at: Instant) -> Ticket {
        Ticket {
            id,
            at: Some(at),
            admitted: true,
        }
    }

    /// A ticket whose place is still being decided: its holder learns the instant from
    /// [`Backend::check`], which answers [`Admission::Deciding`] until then.
    #[must_use]
    pub const fn deciding(id: u64) -> Ticket {
        Ticket {
            id,
            at: None,
            admitted: false,
        }
    }

    /// Whether the place was taken on the spot (made by [`Ticket::admitted`]).
    #[must_use]
    pub const fn is_admitted(&self) -> bool {
        self.admitted
    }

    /// The backend's reference to this place.
    #[must_use]
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// The instant the place was scheduled for when the ticket was issued, if the backend
    /// knew it then.
    #[must_use]
    pub const fn at(&self) -> Option<Instant> {
        self.at
    }
}

/// The answer of [`Backend::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The ticket's instant has come: go.
    Admitted,
    /// Sleep until this instant, then check again.
    WaitUntil(Instant),
    /// The place is still being decided (a round trip to a shared store is under way). The
    /// backend keeps the waker and wakes it when it knows more.
    Deciding,
    /// The place the backend found lies at this instant, past the ticket's deadline; nothing
    /// is held any more.
    Refused(Instant),
    /// The backend cannot admit anybody (a shared store out of reach, with a policy of
    /// failing closed); nothing is held any more.
    Unavailable(Unavailable),
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
    /// How a backend that shares its state through a store (another process, a server) is
    /// doing; `None` for a backend that keeps it in this process.
    pub store: Option<StoreStatus>,
}

/// The health of a backend whose state lives in a shared store, for
/// [`Snapshot`](crate::Snapshot).
///
/// ```
/// use calm_ratelimit::backend::StoreStatus;
///
/// let mut status = StoreStatus::default();
/// assert!(!status.shared);
/// status.shared = true; // filled in by the backend
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStatus {
    /// Whether places are being decided by the shared store right now; `false` while the
    /// store is out of reach and its fallback policy decides.
    pub shared: bool,
    /// How many times the store went out of reach (each outage counted once).
    pub outages: u64,
    /// Places given by the fallback while the store was out of reach.
    pub fallback_admissions: u64,
    /// Requests refused because the store was out of reach and the policy fails closed.
    pub unavailable: u64,
    /// Round trips made to the store.
    pub round_trips: u64,
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
            store: None,
        }
    }
}

/// The default backend: GCRA over every quota at once, in this process.
///
/// See the [module docs](self) for how reservations, releases and pauses work, and who is
/// woken when.
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
    /// The index of the lane paced by a learned rate, after the quotas' lanes.
    learned: Option<usize>,
    state: Mutex<State>,
}

/// Ticket id of a place admitted on the spot: it never enters the queue.
const ON_THE_SPOT: u64 = 0;

/// No deadline.
const UNBOUNDED: u64 = u64::MAX;

// NOTE: times inside the state are nanoseconds since `origin`; a u64 lasts 584 years.
#[derive(Debug)]
struct State {
    lanes: Box<[Lane]>,
    queue: VecDeque<Entry>,
    next_id: u64,
    paused_until: u64,
    /// The latest clock reading: instants are recorded from it, so they never go backwards.
    now: u64,
    /// Tickets from this index on have stale instants (and the lanes' tails are stale):
    /// see `replay_upto`.
    stale: usize,
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
    /// The instant the ticket is scheduled for now.
    at: u64,
    /// The instant its holder was last told, and sleeps until.
    promised: u64,
    /// The holder's deadline (`UNBOUNDED` if none).
    deadline: u64,
    waker: Option<Waker>,
    /// Every lane's TAT after this ticket, so a replay starts from the first stale ticket.
    tails: Box<[u128]>,
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
            learned: None,
            state: Mutex::new(State {
                lanes,
                queue: VecDeque::new(),
                next_id: ON_THE_SPOT + 1,
                paused_until: 0,
                now: 0,
                stale: 0,
                waits: 0,
                waited: 0,
            }),
        }
    }

    /// A backend enforcing `quotas` and, on top of them, a rate it is told
    /// ([`Backend::set_learned_rate`]), `per_second` at first (no limit of its own if `None`).
    pub(crate) fn with_learned_rate(
        quotas: impl IntoIterator<Item = Quota>,
        per_second: Option<f64>,
    ) -> InProcess {
        let mut backend = InProcess::new(quotas);
        let state = backend
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let mut lanes = std::mem::take(&mut state.lanes).into_vec();
        backend.learned = Some(lanes.len());
        lanes.push(Lane {
            interval: per_second.map_or(0, interval_of),
            tolerance: 0,
            base: 0,
            tail: 0,
        });
        state.lanes = lanes.into_boxed_slice();
        backend
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

    /// Takes the lock, then reads the clock: see [the clock](self#the-clock).
    fn lock(&self) -> (MutexGuard<'_, State>, u64) {
        // NOTE: nothing panics while holding the lock (wakers are woken after it is released),
        // and every update leaves the state consistent, so poisoning is ignored.
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.nanos(Instant::now()).max(st.now);
        st.now = now;
        (st, now)
    }
}

impl State {
    /// Folds every ticket whose instant has come into the base. A holder sleeping past `now`
    /// is woken: it may go.
    fn settle(&mut self, now: u64, wake: &mut Vec<Waker>) {
        loop {
            self.replay_upto(0, now);
            let Some(front) = self.queue.front() else {
                break;
            };
            if front.at > now {
                break;
            }
            let Some(entry) = self.queue.pop_front() else {
                break;
            };
            self.stale = self.stale.saturating_sub(1);
            for lane in self.lanes.iter_mut() {
                lane.base = lane
                    .base
                    .max(u128::from(entry.at))
                    .saturating_add(lane.interval);
            }
            if entry.at > entry.asked {
                self.waits += 1;
                self.waited = self.waited.saturating_add(entry.at - entry.asked);
            }
            if entry.promised > now {
                wake.extend(entry.waker);
            }
        }
        if self.queue.is_empty() {
            self.stale = 0;
            for lane in self.lanes.iter_mut() {
                lane.tail = lane.base;
            }
        }
    }

    /// Wakes the head of the queue if it changed (it is not `before`) and may now go earlier
    /// than its holder was told.
    fn wake_new_head(&mut self, before: Option<u64>, now: u64, wake: &mut Vec<Waker>) {
        self.replay_upto(0, now);
        if let Some(head) = self.queue.front_mut() {
            if Some(head.id) != before && head.at < head.promised {
                head.promised = head.at;
                wake.extend(head.waker.clone());
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

    /// Brings the instants of the tickets up to index `upto` (and the lanes' tails, when that
    /// is the last) up to date, replaying GCRA over the stale ones.
    ///
    /// NOTE: a release only marks the tickets behind it stale; they are replayed when someone
    /// needs their instants (a check, the head, a new reservation). Replayed later, a
    /// ticket's instant can only be later than replayed at once (the clock only moves on), so
    /// this never admits anything earlier, and a queue whose callers give up one after another
    /// is replayed about once, not once per release.
    fn replay_upto(&mut self, upto: usize, now: u64) {
        let len = self.queue.len();
        if self.stale >= len || self.stale > upto {
            return;
        }
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            lane.tail = match self.stale.checked_sub(1).and_then(|p| self.queue.get(p)) {
                Some(before) => before.tails[i],
                None => lane.base,
            };
        }
        let last = upto.min(len - 1);
        for k in self.stale..=last {
            let at = self.earliest(now.max(self.queue[k].asked));
            self.advance(at);
            let (lanes, entry) = (&self.lanes, &mut self.queue[k]);
            entry.at = at;
            for (t, lane) in entry.tails.iter_mut().zip(lanes.iter()) {
                *t = lane.tail;
            }
        }
        // NOTE: the lanes' tails are the last ticket's TATs only once it is replayed.
        self.stale = last + 1;
    }

    /// The lanes' tails after every queued ticket.
    fn replay_all(&mut self, now: u64) {
        self.replay_upto(usize::MAX, now);
        // NOTE: also when nothing was stale: the last tickets may have been released.
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            lane.tail = match self.queue.back() {
                Some(last) => last.tails[i],
                None => lane.base,
            };
        }
    }

    /// Pauses until `until` and replays the whole queue, waking the holders it moves past
    /// their deadlines.
    fn pause(&mut self, until: u64, now: u64, wake: &mut Vec<Waker>) {
        self.replay_all(now);
        let before: Vec<u64> = self.queue.iter().map(|e| e.at).collect();
        self.paused_until = until;
        self.stale = 0;
        self.replay_all(now);
        for (entry, old) in self.queue.iter_mut().zip(before) {
            if entry.at > entry.deadline && old <= entry.deadline {
                entry.promised = entry.at;
                wake.extend(entry.waker.clone());
            }
        }
    }

    fn find(&self, id: u64) -> Option<usize> {
        // NOTE: ids grow in queue order and removals keep the order, so the queue is sorted.
        self.queue.binary_search_by_key(&id, |e| e.id).ok()
    }
}

/// The GCRA interval of `per_second` requests per second, in nanoseconds (at least one).
fn interval_of(per_second: f64) -> u128 {
    let nanos = 1e9 / per_second;
    // NOTE: `as` saturates: an infinite or NaN rate would be 0 or u128::MAX; callers pass
    // finite rates above zero.
    (nanos.ceil() as u128).max(1)
}

fn wake_all(wake: Vec<Waker>) {
    wake.into_iter().for_each(Waker::wake);
}

impl Backend for InProcess {
    fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    fn reserve(&self, deadline: Option<Instant>, waker: &Waker) -> Result<Ticket, Instant> {
        let mut wake = Vec::new();
        let (mut st, n) = self.lock();
        if st.queue.is_empty() {
            // NOTE: the common case, nobody queued: nothing to settle, wake or replay; the
            // lanes' tails are their bases, as `settle` and `replay_all` would leave them.
            st.stale = 0;
            for lane in st.lanes.iter_mut() {
                lane.tail = lane.base;
            }
        } else {
            let head = st.queue.front().map(|e| e.id);
            st.settle(n, &mut wake);
            st.wake_new_head(head, n, &mut wake);
            st.replay_all(n);
        }
        let at = st.earliest(n);
        let result = if at <= n {
            // NOTE: a ticket behind a queued one is never due at once (the queue's last
            // instant binds it), so the queue is empty here and base may catch up with tail.
            debug_assert!(st.queue.is_empty());
            for lane in st.lanes.iter_mut() {
                lane.tail = lane.tail.max(u128::from(n)).saturating_add(lane.interval);
                lane.base = lane.tail;
            }
            Ok(Ticket::admitted(ON_THE_SPOT, self.instant(n)))
        } else {
            let bound = deadline.map_or(UNBOUNDED, |d| self.nanos(d));
            if deadline.is_some() && at > bound {
                Err(self.instant(at))
            } else {
                st.advance(at);
                let id = st.next_id;
                st.next_id += 1;
                let tails = st.lanes.iter().map(|l| l.tail).collect();
                st.queue.push_back(Entry {
                    id,
                    asked: n,
                    at,
                    promised: at,
                    deadline: bound,
                    waker: Some(waker.clone()),
                    tails,
                });
                // NOTE: the queue was replayed whole above: every instant is fresh.
                st.stale = st.queue.len();
                Ok(Ticket::new(id, self.instant(at)))
            }
        };
        drop(st);
        wake_all(wake);
        result
    }

    fn check(&self, ticket: &Ticket, waker: &Waker) -> Admission {
        if ticket.id == ON_THE_SPOT {
            return Admission::Admitted;
        }
        let mut wake = Vec::new();
        let (mut st, n) = self.lock();
        let head = st.queue.front().map(|e| e.id);
        st.settle(n, &mut wake);
        st.wake_new_head(head, n, &mut wake);
        let admission = match st.find(ticket.id) {
            None => Admission::Admitted,
            Some(i) => {
                st.replay_upto(i, n);
                let entry = &mut st.queue[i];
                match &entry.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => entry.waker = Some(waker.clone()),
                }
                entry.promised = entry.at;
                Admission::WaitUntil(self.instant(entry.at))
            }
        };
        drop(st);
        wake_all(wake);
        admission
    }

    fn release(&self, ticket: &Ticket) {
        if ticket.id == ON_THE_SPOT {
            return;
        }
        let mut wake = Vec::new();
        let (mut st, n) = self.lock();
        let head = st.queue.front().map(|e| e.id);
        st.settle(n, &mut wake);
        if let Some(i) = st.find(ticket.id) {
            st.queue.remove(i);
            st.stale = st.stale.min(i);
            // NOTE: only the head is replayed now (to wake it if it may go earlier), and
            // whatever became due with it; the rest when needed.
            st.settle(n, &mut wake);
        }
        st.wake_new_head(head, n, &mut wake);
        drop(st);
        wake_all(wake);
    }

    fn set_learned_rate(&self, per_second: f64) -> bool {
        let Some(lane) = self.learned else {
            return false;
        };
        let mut wake = Vec::new();
        let (mut st, n) = self.lock();
        let head = st.queue.front().map(|e| e.id);
        st.settle(n, &mut wake);
        st.replay_all(n);
        let before: Vec<u64> = st.queue.iter().map(|e| e.at).collect();
        st.lanes[lane].interval = interval_of(per_second);
        // NOTE: every queued ticket is placed again at the new rate. A holder whose place
        // came closer is woken, and so is one a lower rate moves past its deadline (as a
        // pause does); one whose place only moved away finds out when it wakes.
        st.stale = 0;
        st.replay_all(n);
        for (entry, old) in st.queue.iter_mut().zip(before) {
            let past_deadline = entry.at > entry.deadline && old <= entry.deadline;
            if entry.at < entry.promised || past_deadline {
                entry.promised = entry.at;
                wake.extend(entry.waker.clone());
            }
        }
        st.settle(n, &mut wake);
        st.wake_new_head(head, n, &mut wake);
        drop(st);
        wake_all(wake);
        true
    }

    fn pause_until(&self, until: Instant) -> bool {
        let mut wake = Vec::new();
        let (mut st, n) = self.lock();
        let u = self.nanos(until);
        let head = st.queue.front().map(|e| e.id);
        st.settle(n, &mut wake);
        let moved = u > n && u > st.paused_until;
        if moved {
            st.pause(u, n, &mut wake);
            st.settle(n, &mut wake);
        }
        st.wake_new_head(head, n, &mut wake);
        drop(st);
        wake_all(wake);
        moved
    }

    fn state(&self) -> BackendState {
        let mut wake = Vec::new();
        let (mut st, n) = self.lock();
        let head = st.queue.front().map(|e| e.id);
        st.settle(n, &mut wake);
        st.wake_new_head(head, n, &mut wake);
        st.replay_all(n);
        let mut state = BackendState::new(self.instant(st.earliest(n)));
        state.paused_until = (st.paused_until > n).then(|| self.instant(st.paused_until));
        state.queued = st.queue.len();
        state.waits = st.waits;
        state.total_waited = Duration::from_nanos(st.waited);
        drop(st);
        wake_all(wake);
        state
    }
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queued = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .len();
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn noop() -> &'static Waker {
        Waker::noop()
    }

    /// Moves paused time to `t`.
    async fn advance_to(t: Instant) {
        tokio::time::advance(t.saturating_duration_since(Instant::now())).await;
    }

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// `count` wakers, each counting its own wake-ups.
    fn counters(count: usize) -> Vec<(Arc<Counter>, Waker)> {
        (0..count)
            .map(|_| {
                let c = Arc::new(Counter::default());
                (Arc::clone(&c), Waker::from(c))
            })
            .collect()
    }

    fn woken(counters: &[(Arc<Counter>, Waker)]) -> Vec<usize> {
        counters
            .iter()
            .enumerate()
            .filter(|(_, (c, _))| c.0.load(Ordering::SeqCst) > 0)
            .map(|(i, _)| i)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_by_the_interval() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let ats: Vec<_> = (0..4)
            .map(|_| b.reserve(None, noop()).unwrap().at().unwrap() - t0)
            .collect();
        assert_eq!(ats, [ms(0), ms(100), ms(200), ms(300)]);
    }

    #[tokio::test(start_paused = true)]
    async fn huge_periods_and_bursts_do_not_overflow_into_no_limit() {
        // 5 at once, then one every 200 years: interval × (burst - 1) and the TAT after three
        // requests are past u64 nanoseconds.
        let period = Duration::from_secs(200 * 365 * 86_400);
        let q = Quota::with_period(period).unwrap().burst(n(5));
        let b = InProcess::new([q]);
        let t0 = b.origin;
        for _ in 0..5 {
            assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0));
        }
        assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0 + period));
        assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0 + period * 2));
        assert!(b.reserve(Some(t0 + ms(1)), noop()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_refuses_without_taking() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        b.reserve(None, noop()).unwrap();
        assert_eq!(b.reserve(Some(t0 + ms(50)), noop()), Err(t0 + ms(100)));
        assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0 + ms(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn release_moves_later_tickets_up() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let tickets: Vec<_> = (0..4).map(|_| b.reserve(None, noop()).unwrap()).collect();
        advance_to(t0 + ms(10)).await;
        b.release(&tickets[1]);
        assert_eq!(
            b.check(&tickets[2], noop()),
            Admission::WaitUntil(t0 + ms(100))
        );
        assert_eq!(
            b.check(&tickets[3], noop()),
            Admission::WaitUntil(t0 + ms(200))
        );
        assert_eq!(b.state().next_free, t0 + ms(300));
        advance_to(t0 + ms(100)).await;
        assert_eq!(b.check(&tickets[2], noop()), Admission::Admitted);
    }

    #[tokio::test(start_paused = true)]
    async fn release_after_the_instant_refunds_nothing() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        b.reserve(None, noop()).unwrap();
        let t1 = b.reserve(None, noop()).unwrap();
        advance_to(t0 + ms(150)).await;
        b.release(&t1);
        assert_eq!(b.state().next_free, t0 + ms(200));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_moves_queue_behind_it_in_order() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let tickets: Vec<_> = (0..3).map(|_| b.reserve(None, noop()).unwrap()).collect();
        advance_to(t0 + ms(50)).await;
        assert!(b.pause_until(t0 + ms(1000)));
        assert_eq!(
            b.check(&tickets[1], noop()),
            Admission::WaitUntil(t0 + ms(1000))
        );
        assert_eq!(
            b.check(&tickets[2], noop()),
            Admission::WaitUntil(t0 + ms(1100))
        );
        let state = b.state();
        assert_eq!(state.paused_until, Some(t0 + ms(1000)));
        assert_eq!(state.queued, 2);
        // A shorter pause does not shorten it, and says so.
        advance_to(t0 + ms(60)).await;
        assert!(!b.pause_until(t0 + ms(500)));
        assert!(!b.pause_until(t0 + ms(1000)));
        assert_eq!(b.state().paused_until, Some(t0 + ms(1000)));
    }

    #[tokio::test(start_paused = true)]
    async fn no_quota_means_only_pauses_hold_back() {
        let b = InProcess::new([]);
        let t0 = b.origin;
        for _ in 0..100 {
            assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0));
        }
        b.pause_until(t0 + ms(10));
        assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0 + ms(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_counted_when_due() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        for _ in 0..3 {
            b.reserve(None, noop()).unwrap();
        }
        advance_to(t0 + ms(250)).await;
        let s = b.state();
        assert_eq!((s.waits, s.total_waited, s.queued), (2, ms(300), 0));
    }

    /// A caller held up on the lock is recorded when it gets the lock, not when it asked:
    /// the clock is read inside the critical section.
    #[test]
    fn a_caller_waiting_for_the_lock_is_recorded_when_it_gets_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let _entered = rt.enter();
        let b = Arc::new(InProcess::new([Quota::per_second(n(10))]));
        let t0 = b.origin;
        b.reserve(None, noop()).unwrap(); // the place at 0 ms is gone
        let held = b.lock();
        let contender = {
            let (b, handle) = (Arc::clone(&b), rt.handle().clone());
            std::thread::spawn(move || {
                let _entered = handle.enter();
                b.reserve(None, noop()).unwrap()
            })
        };
        // While the contender waits for the lock, 250 ms pass.
        rt.block_on(tokio::time::advance(ms(250)));
        drop(held);
        let ticket = contender.join().unwrap();
        // Booked at 250 ms, when it got the lock; not into the slot at 100 ms that passed.
        assert_eq!(ticket.at(), Some(t0 + ms(250)));
        assert_eq!(ticket.id(), ON_THE_SPOT);
        assert_eq!(b.state().next_free, t0 + ms(350));
    }

    #[tokio::test(start_paused = true)]
    async fn recorded_instants_never_go_backwards() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        // A reading later than the clock (another thread, another clock) was recorded.
        b.lock().0.now = b.nanos(t0 + ms(500));
        let ticket = b.reserve(None, noop()).unwrap();
        assert_eq!(ticket.at(), Some(t0 + ms(500)));
        assert_eq!(b.reserve(None, noop()).unwrap().at(), Some(t0 + ms(600)));
        assert_eq!(b.state().next_free, t0 + ms(700));
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_behind_the_head_wakes_nobody() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let wakers = counters(100);
        let tickets: Vec<_> = wakers
            .iter()
            .map(|(_, w)| b.reserve(None, w).unwrap())
            .collect();
        for i in (3..100).step_by(2) {
            b.release(&tickets[i]);
        }
        assert_eq!(woken(&wakers), Vec::<usize>::new());
        // Everyone behind moved up all the same.
        let t0 = b.origin;
        assert_eq!(
            b.check(&tickets[98], noop()),
            Admission::WaitUntil(t0 + ms(5000))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn releasing_the_head_wakes_only_the_new_head() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let wakers = counters(10);
        let tickets: Vec<_> = wakers
            .iter()
            .map(|(_, w)| b.reserve(None, w).unwrap())
            .collect();
        // tickets[0] went at once; tickets[1] is the head, due at 100 ms.
        b.release(&tickets[1]);
        assert_eq!(woken(&wakers), [2]);
        assert_eq!(
            b.check(&tickets[2], &wakers[2].1),
            Admission::WaitUntil(t0 + ms(100))
        );
        // The rest learn their earlier instants when they become the head.
        advance_to(t0 + ms(100)).await;
        assert_eq!(b.check(&tickets[2], noop()), Admission::Admitted);
        assert_eq!(woken(&wakers), [2, 3]);
        assert_eq!(
            b.check(&tickets[3], noop()),
            Admission::WaitUntil(t0 + ms(200))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_due_while_its_holder_sleeps_later_is_woken() {
        // Burst 2: two places at once after a pause.
        let b = InProcess::new([Quota::per_second(n(10)).burst(n(2))]);
        let t0 = b.origin;
        let wakers = counters(6);
        let tickets: Vec<_> = wakers
            .iter()
            .map(|(_, w)| b.reserve(None, w).unwrap())
            .collect();
        let ats: Vec<_> = tickets.iter().map(|t| t.at().unwrap() - t0).collect();
        assert_eq!(ats, [0, 0, 100, 200, 300, 400].map(ms));
        advance_to(t0 + ms(50)).await;
        b.pause_until(t0 + ms(1000));
        // Every holder learns its new instant (1000, 1000, 1100, 1200 ms).
        for (ticket, (_, waker)) in tickets[2..].iter().zip(&wakers[2..]) {
            assert!(matches!(b.check(ticket, waker), Admission::WaitUntil(_)));
        }
        advance_to(t0 + ms(500)).await;
        // tickets[4] moves up to 1000 ms and tickets[5] to 1100 ms; neither is the head.
        b.release(&tickets[3]);
        assert_eq!(woken(&wakers), Vec::<usize>::new());
        advance_to(t0 + ms(1000)).await;
        assert_eq!(b.check(&tickets[2], noop()), Admission::Admitted);
        // tickets[4] is due with it, though told 1100 ms; tickets[5], the new head, may go
        // at 1100 ms, though told 1200 ms.
        assert_eq!(woken(&wakers), [4, 5]);
        assert_eq!(b.check(&tickets[4], noop()), Admission::Admitted);
        assert_eq!(
            b.check(&tickets[5], noop()),
            Admission::WaitUntil(t0 + ms(1100))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_extended_by_a_nanosecond_wakes_nobody_who_need_not_know() {
        let b = InProcess::new([Quota::per_second(n(10))]);
        let t0 = b.origin;
        let wakers = counters(100);
        let mut tickets: Vec<_> = wakers[..99]
            .iter()
            .map(|(_, w)| b.reserve(None, w).unwrap())
            .collect();
        // One holder will not wait past 20 s.
        tickets.push(b.reserve(Some(t0 + ms(20_000)), &wakers[99].1).unwrap());
        assert!(b.pause_until(t0 + ms(5000)));
        assert_eq!(
            woken(&wakers),
            Vec::<usize>::new(),
            "a pause alone wakes nobody"
        );
        assert!(b.pause_until(t0 + ms(5000) + Duration::from_nanos(1)));
        assert_eq!(woken(&wakers), Vec::<usize>::new());
        // A pause that moves the bounded holder past its deadline wakes it, and only it.
        assert!(b.pause_until(t0 + ms(15_000)));
        assert_eq!(woken(&wakers), [99]);
        assert_eq!(
            b.check(&tickets[99], noop()),
            Admission::WaitUntil(t0 + ms(15_000) + ms(100) * 98)
        );
    }
}
