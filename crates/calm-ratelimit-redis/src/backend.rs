//! [`RedisBackend`]: the local queue in front of the shared state.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use calm_ratelimit::backend::{Admission, Backend, BackendState, InProcess, StoreStatus, Ticket};
use calm_ratelimit::error::Unavailable;
use calm_ratelimit::{BoxError, Quota};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::store::{Outcome, PauseSeen, Reply, Scripts, Target};
use crate::{driver, pauses};

/// A [`Backend`] whose quotas and pauses live in Redis, shared by every process that builds
/// one with the same name; built by [`RedisBackend::builder`].
///
/// See the [crate docs](crate) for what is shared, what a cancelled caller gives back and
/// what happens when Redis is out of reach. Hand it to
/// [`Limiter::with_backend`](calm_ratelimit::Limiter::with_backend), or let
/// [`RedisBackendBuilder::limiter`](crate::RedisBackendBuilder::limiter) do it.
///
/// # Snapshot
///
/// [`Limiter::snapshot`](calm_ratelimit::Limiter::snapshot) describes this process: its
/// queued callers, their waits, the pause it knows of, and in
/// [`store`](calm_ratelimit::Snapshot::store) the round trips made, the outages met and the
/// places the fallback gave. `next_free` is the end of the pause it knows of, or now (the
/// shared queue is one round trip away); during an outage, the fallback's.
/// [`Limiter::try_acquire`](calm_ratelimit::Limiter::try_acquire) cannot answer without a
/// round trip and always refuses; use `acquire` under a timeout.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use calm_ratelimit::{Limiter, Quota};
/// use calm_ratelimit_redis::RedisBackend;
///
/// let backend = RedisBackend::builder("redis://127.0.0.1:6379/", "github:token-a")
///     .quota(Quota::per_hour(NonZeroU32::new(5000).unwrap()))
///     .build()?;
/// assert_eq!(backend.name(), "github:token-a");
/// let limiter = Limiter::with_backend(backend);
/// # Ok::<(), calm_ratelimit_redis::Error>(())
/// ```
pub struct RedisBackend {
    pub(crate) inner: Arc<Inner>,
}

/// What happens when Redis is out of reach (it refuses connections, or answers slower than
/// the [timeout](crate::RedisBackendBuilder::timeout)).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use calm_ratelimit::Quota;
/// use calm_ratelimit_redis::{Fallback, RedisBackend};
///
/// let n = |n| NonZeroU32::new(n).unwrap();
/// // Eight replicas share 600 per minute; alone, each keeps to its eighth.
/// let backend = RedisBackend::builder("redis://127.0.0.1/", "api")
///     .quota(Quota::per_minute(n(600)))
///     .fallback(Fallback::InProcessWith(vec![Quota::per_minute(n(75))]))
///     .build()?;
/// # Ok::<(), calm_ratelimit_redis::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// Pace in this process with the limiter's own quotas until Redis answers again (the
    /// default). Every process then spends the whole quota on its own.
    #[default]
    InProcess,
    /// Pace in this process with these quotas (say, the shared quota divided by the number of
    /// processes).
    InProcessWith(Vec<Quota>),
    /// Send nothing: every request fails at once with
    /// [`Unavailable`](calm_ratelimit::error::Unavailable) until Redis answers again.
    FailClosed,
}

pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) quotas: Box<[Quota]>,
    pub(crate) target: Target,
    pub(crate) scripts: Scripts,
    pub(crate) timeout: Duration,
    pub(crate) recheck: Duration,
    /// `None`: fail closed.
    pub(crate) fallback: Option<InProcess>,
    pub(crate) notify: Arc<Notify>,
    local: Mutex<Local>,
}

/// The process's own state: its waiting callers, in the order they asked.
#[derive(Default)]
struct Local {
    entries: VecDeque<Entry>,
    next_id: u64,
    pause: Option<Pause>,
    /// A pause learned from a response here, still to be written to Redis.
    pause_to_write: Option<Instant>,
    /// The TATs of reservations whose callers were cancelled, to give back if nothing was
    /// reserved after them.
    releases: Vec<Box<[u64]>>,
    /// The outage in force, if Redis is out of reach.
    outage: Option<Unavailable>,
    tasks: Option<Tasks>,
    status: StoreStatus,
    waits: u64,
    waited: Duration,
}

/// A pause this process knows of.
#[derive(Clone, Copy)]
struct Pause {
    until: Instant,
    /// Its end in Redis's microseconds, which names it in every process; [`NOT_WRITTEN`] for
    /// one learned here and not yet written. A place reserved knowing a pause of this id or a
    /// later one lies after it.
    id: u64,
}

/// The id of a pause learned here, newer than any Redis knows until it is written.
const NOT_WRITTEN: u64 = u64::MAX;

struct Tasks {
    driver: AbortHandle,
    pauses: AbortHandle,
}

struct Entry {
    id: u64,
    asked: Instant,
    deadline: Option<Instant>,
    phase: Phase,
    waker: Option<Waker>,
}

enum Phase {
    /// Waiting for a round trip.
    Unsent,
    /// In a round trip under way.
    Sent,
    /// Reserved in Redis for `at` (on this process's clock), knowing the pause `pause_seen`
    /// (0: none); `queued` when the place was not free as Redis was asked.
    Reserved {
        at: Instant,
        tats: Box<[u64]>,
        pause_seen: u64,
        queued: bool,
    },
    /// Held by the fallback, during an outage.
    Fallback(Ticket),
    Refused(Instant),
    Failed(Unavailable),
}

/// The id of a place taken on the spot: it never enters the queue.
const ON_THE_SPOT: u64 = 0;

/// The most requests one round trip reserves.
pub(crate) const MAX_BATCH: usize = 256;

/// One round trip's worth of work, taken by the driver.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// Ids and bounds (from now) of the requests to reserve.
    pub(crate) batch: Vec<(u64, Option<Instant>)>,
    pub(crate) pause: Option<Instant>,
    pub(crate) releases: Vec<Box<[u64]>>,
}

impl Work {
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.pause.is_none() && self.releases.is_empty()
    }
}

impl Inner {
    pub(crate) fn new(
        name: String,
        quotas: Box<[Quota]>,
        target: Target,
        scripts: Scripts,
        timeout: Duration,
        recheck: Duration,
        fallback: Option<InProcess>,
    ) -> Inner {
        let mut status = StoreStatus::default();
        status.shared = true;
        Inner {
            name,
            quotas,
            target,
            scripts,
            timeout,
            recheck,
            fallback,
            notify: Arc::new(Notify::new()),
            local: Mutex::new(Local {
                next_id: ON_THE_SPOT + 1,
                status,
                ..Local::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Local> {
        // NOTE: nothing panics under the lock and every update leaves the state whole.
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the driver and the pause listener on the current runtime, unless they run.
    /// `false` outside a runtime.
    fn ensure_tasks(self: &Arc<Self>, local: &mut Local) -> bool {
        if local
            .tasks
            .as_ref()
            .is_some_and(|t| !t.driver.is_finished())
        {
            return true;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if let Some(old) = local.tasks.take() {
            old.pauses.abort();
        }
        // NOTE: a driver that died with its runtime left its round trip unanswered.
        for entry in local.entries.iter_mut() {
            if matches!(entry.phase, Phase::Sent) {
                entry.phase = Phase::Unsent;
            }
        }
        let weak = Arc::downgrade(self);
        let driver = runtime.spawn(driver::run(weak.clone(), Arc::clone(&self.notify)));
        let pauses = runtime.spawn(pauses::listen(weak));
        local.tasks = Some(Tasks {
            driver: driver.abort_handle(),
            pauses: pauses.abort_handle(),
        });
        true
    }

    /// Takes the next round trip's work: the oldest unsent requests, the pause to write and
    /// the reservations to give back. Nothing while Redis is out of reach.
    pub(crate) fn take_work(&self) -> Work {
        let mut local = self.lock();
        if local.outage.is_some() {
            return Work::default();
        }
        let batch = local
            .entries
            .iter_mut()
            .filter(|e| matches!(e.phase, Phase::Unsent))
            .take(MAX_BATCH)
            .map(|e| {
                e.phase = Phase::Sent;
                (e.id, e.deadline)
            })
            .collect();
        Work {
            batch,
            pause: local.pause_to_write.take(),
            releases: std::mem::take(&mut local.releases),
        }
    }

    /// Applies what a round trip answered, received at `received`: the pause it wrote, and
    /// the batch's places.
    pub(crate) fn apply(
        &self,
        work: &Work,
        written: Option<PauseSeen>,
        reply: Option<Reply>,
        received: Instant,
    ) {
        let mut wake = Vec::new();
        let mut local = self.lock();
        local.status.round_trips += 1;
        if let Some(written) = written {
            if let Some(pause) = local.pause.as_mut().filter(|p| p.id == NOT_WRITTEN) {
                pause.id = written.id;
            }
            self.learn_pause(&mut local, written, received, &mut wake);
        }
        let Some(reply) = reply else {
            drop(local);
            wake.into_iter().for_each(Waker::wake);
            return;
        };
        let pause_seen = reply.pause.map_or(0, |p| p.id);
        if let Some(pause) = reply.pause {
            self.learn_pause(&mut local, pause, received, &mut wake);
        }
        for (&(id, deadline), outcome) in work.batch.iter().zip(reply.outcomes) {
            let phase = match outcome {
                Outcome::Reserved { wait, tats } => {
                    let at = received + wait;
                    if deadline.is_some_and(|d| at > d) {
                        // NOTE: the round trip itself carried the place past the bound.
                        local.releases.push(tats);
                        Phase::Refused(at)
                    } else {
                        Phase::Reserved {
                            at,
                            tats,
                            pause_seen,
                            queued: !wait.is_zero(),
                        }
                    }
                }
                Outcome::Refused { wait } => Phase::Refused(received + wait),
            };
            match find(&local.entries, id) {
                Some(i) => {
                    let entry = &mut local.entries[i];
                    entry.phase = phase;
                    wake.extend(entry.waker.take());
                }
                // NOTE: its caller was cancelled during the round trip.
                None => {
                    if let Phase::Reserved { tats, .. } = phase {
                        local.releases.push(tats);
                    }
                }
            }
        }
        if !local.releases.is_empty() {
            self.notify.notify_one();
        }
        drop(local);
        wake.into_iter().for_each(Waker::wake);
    }

    /// Redis did not answer: every request of the round trip, and every request after it,
    /// goes to the fallback policy until Redis answers again.
    pub(crate) fn enter_outage(&self, error: BoxError) {
        let mut wake = Vec::new();
        let mut local = self.lock();
        if local.outage.is_none() {
            local.status.outages += 1;
            local.status.shared = false;
            tracing::warn!(
                limiter = %self.name,
                error = %error,
                fallback = if self.fallback.is_some() { "pacing in this process" } else { "failing closed" },
                "redis rate limiter: Redis is out of reach",
            );
            local.outage = Some(Unavailable::new(error));
        }
        let Local {
            entries,
            outage,
            status,
            ..
        } = &mut *local;
        for entry in entries.iter_mut() {
            if matches!(entry.phase, Phase::Unsent | Phase::Sent) {
                // NOTE: woken below, the holder checks and hands the fallback its waker.
                entry.phase =
                    self.fall_back(entry.deadline, Waker::noop(), outage.as_ref(), status);
                wake.extend(entry.waker.take());
            }
        }
        drop(local);
        wake.into_iter().for_each(Waker::wake);
    }

    /// Redis answers again: new requests are shared again. Those held by the fallback keep
    /// their places.
    pub(crate) fn leave_outage(&self) {
        let mut local = self.lock();
        if local.outage.take().is_some() {
            local.status.shared = true;
            tracing::info!(limiter = %self.name, "redis rate limiter: Redis answers again, quota shared again");
            self.write_unwritten_pause(&mut local, Instant::now());
        }
    }

    /// Queues the pause learned here for writing if its write was lost (an outage, a failed
    /// round trip): until Redis knows it, every place it gives would lie inside it.
    fn write_unwritten_pause(&self, local: &mut Local, now: Instant) {
        let unwritten = local
            .pause
            .filter(|p| p.id == NOT_WRITTEN && p.until > now)
            .map(|p| p.until);
        if unwritten.is_some() && local.pause_to_write.is_none() {
            local.pause_to_write = unwritten;
        }
    }

    pub(crate) fn in_outage(&self) -> bool {
        self.lock().outage.is_some()
    }

    /// A place from the fallback policy, for a request bounded by `deadline`.
    fn fall_back(
        &self,
        deadline: Option<Instant>,
        waker: &Waker,
        outage: Option<&Unavailable>,
        status: &mut StoreStatus,
    ) -> Phase {
        let Some(fallback) = &self.fallback else {
            status.unavailable += 1;
            let error = outage
                .cloned()
                .unwrap_or_else(|| Unavailable::new("redis rate limiter: no tokio runtime"));
            return Phase::Failed(error);
        };
        status.fallback_admissions += 1;
        match fallback.reserve(deadline, waker) {
            Ok(ticket) => Phase::Fallback(ticket),
            Err(at) => Phase::Refused(at),
        }
    }

    /// A pause published by a process (this one included), received at `received`.
    pub(crate) fn pause_learned(&self, pause: PauseSeen, received: Instant) {
        let mut wake = Vec::new();
        let mut local = self.lock();
        self.learn_pause(&mut local, pause, received, &mut wake);
        drop(local);
        wake.into_iter().for_each(Waker::wake);
    }

    /// Merges a pause Redis knows of into this process's.
    ///
    /// NOTE: it arrives later than Redis set it, so its end here lies a little after its
    /// end in Redis; the id, not the end, tells whether a reserved place knew of it.
    fn learn_pause(
        &self,
        local: &mut Local,
        pause: PauseSeen,
        received: Instant,
        wake: &mut Vec<Waker>,
    ) -> bool {
        self.pause_here(local, received + pause.left, pause.id, wake)
    }

    /// Pauses this process's callers until `until`. Callers holding a place inside the pause
    /// that did not know of it are woken to take a new one after it (or to fail, if their
    /// bound ends first). Returns whether the end of the pause moved.
    fn pause_here(
        &self,
        local: &mut Local,
        until: Instant,
        id: u64,
        wake: &mut Vec<Waker>,
    ) -> bool {
        let now = Instant::now();
        let current = local.pause.filter(|p| p.until > now);
        if until <= now || current.is_some_and(|p| p.until >= until) {
            return false;
        }
        let id = current.map_or(id, |p| p.id.max(id));
        local.pause = Some(Pause { until, id });
        if let Some(fallback) = &self.fallback {
            fallback.pause_until(until);
        }
        for entry in local.entries.iter_mut() {
            let moved = matches!(
                entry.phase,
                Phase::Reserved { at, pause_seen, .. } if at < until && pause_seen < id
            );
            if moved {
                wake.extend(entry.waker.take());
            }
        }
        true
    }

    fn state(&self) -> BackendState {
        let now = Instant::now();
        let local = self.lock();
        let paused_until = local.pause.map(|p| p.until).filter(|p| *p > now);
        let fallback = self.fallback.as_ref().map(InProcess::state);
        let next_free = match (&local.outage, fallback) {
            (Some(_), Some(f)) => f.next_free,
            _ => paused_until.unwrap_or(now),
        };
        let mut state = BackendState::new(next_free);
        state.paused_until = paused_until;
        state.queued = local.entries.len();
        state.waits = local.waits + fallback.map_or(0, |f| f.waits);
        state.total_waited = local.waited + fallback.map_or(Duration::ZERO, |f| f.total_waited);
        state.store = Some(local.status);
        state
    }
}

fn find(entries: &VecDeque<Entry>, id: u64) -> Option<usize> {
    // NOTE: ids grow in queue order and removals keep the order.
    entries.binary_search_by_key(&id, |e| e.id).ok()
}

impl RedisBackend {
    /// The limiter's name, shared by every process that paces together.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The quotas it enforces, in every process together.
    #[must_use]
    pub fn quotas(&self) -> &[Quota] {
        &self.inner.quotas
    }

    /// The Redis keys it uses: the pause key, then one key per quota (all with the hash tag
    /// `{name}`).
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::Quota;
    /// use calm_ratelimit_redis::RedisBackend;
    ///
    /// let backend = RedisBackend::builder("redis://127.0.0.1/", "github:token-a")
    ///     .quota(Quota::per_second(NonZeroU32::new(5).unwrap()))
    ///     .build()?;
    /// assert_eq!(
    ///     backend.keys(),
    ///     ["calm:rl:{github:token-a}:pause", "calm:rl:{github:token-a}:gcra:200000us:1"]
    /// );
    /// # Ok::<(), calm_ratelimit_redis::Error>(())
    /// ```
    #[must_use]
    pub fn keys(&self) -> Vec<&str> {
        let keys = self.inner.scripts.keys();
        std::iter::once(keys.pause.as_str())
            .chain(keys.quotas.iter().map(String::as_str))
            .collect()
    }
}

impl Backend for RedisBackend {
    fn quotas(&self) -> &[Quota] {
        &self.inner.quotas
    }

    fn reserve(&self, deadline: Option<Instant>, waker: &Waker) -> Result<Ticket, Instant> {
        let inner = &self.inner;
        let now = Instant::now();
        let mut local = inner.lock();
        let paused = local.pause.map(|p| p.until).filter(|p| *p > now);
        if let (Some(p), Some(d)) = (paused, deadline) {
            if p > d {
                return Err(p);
            }
        }
        let phase = if local.outage.is_none() && inner.ensure_tasks(&mut local) {
            inner.notify.notify_one();
            Phase::Unsent
        } else {
            let Local { outage, status, .. } = &mut *local;
            match inner.fall_back(deadline, waker, outage.as_ref(), status) {
                Phase::Fallback(ticket) if ticket.at().is_some_and(|at| at <= now) => {
                    return Ok(Ticket::admitted(ON_THE_SPOT, now));
                }
                Phase::Refused(at) => return Err(at),
                phase => phase,
            }
        };
        let id = local.next_id;
        local.next_id += 1;
        let at = match &phase {
            Phase::Fallback(ticket) => ticket.at(),
            _ => None,
        };
        local.entries.push_back(Entry {
            id,
            asked: now,
            deadline,
            phase,
            waker: Some(waker.clone()),
        });
        Ok(match at {
            Some(at) => Ticket::new(id, at),
            None => Ticket::deciding(id),
        })
    }

    fn check(&self, ticket: &Ticket, waker: &Waker) -> Admission {
        let inner = &self.inner;
        if ticket.id() == ON_THE_SPOT {
            return Admission::Admitted;
        }
        let now = Instant::now();
        let mut local = inner.lock();
        let Some(i) = find(&local.entries, ticket.id()) else {
            return Admission::Admitted;
        };
        let paused = local.pause.filter(|p| p.until > now);
        let entry = &mut local.entries[i];
        let deadline = entry.deadline;
        let admission = match &entry.phase {
            Phase::Unsent | Phase::Sent => Admission::Deciding,
            Phase::Fallback(t) => match inner.fallback.as_ref().map(|f| f.check(t, waker)) {
                Some(Admission::WaitUntil(at)) => Admission::WaitUntil(at),
                _ => Admission::Admitted,
            },
            Phase::Refused(at) => Admission::Refused(*at),
            Phase::Failed(e) => Admission::Unavailable(e.clone()),
            Phase::Reserved {
                at,
                pause_seen,
                queued,
                ..
            } => match paused
                .filter(|p| p.until > *at && p.id > *pause_seen)
                .map(|p| p.until)
            {
                // NOTE: a pause the place was reserved without: take a new place after it
                // (the old one lies inside the pause and is lost).
                Some(p) if deadline.is_some_and(|d| p > d) => Admission::Refused(p),
                Some(_) => {
                    entry.phase = Phase::Unsent;
                    Admission::Deciding
                }
                None if *at > now => Admission::WaitUntil(*at),
                None => {
                    // NOTE: the round trip alone is not a wait for a place.
                    if *queued {
                        let waited = at.saturating_duration_since(entry.asked);
                        local.waits += 1;
                        local.waited += waited;
                    }
                    Admission::Admitted
                }
            },
        };
        match admission {
            Admission::Deciding | Admission::WaitUntil(_) => {
                let entry = &mut local.entries[i];
                match &entry.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => entry.waker = Some(waker.clone()),
                }
                if matches!(entry.phase, Phase::Unsent) {
                    if local.outage.is_some() || !inner.ensure_tasks(&mut local) {
                        let Local {
                            entries,
                            outage,
                            status,
                            ..
                        } = &mut *local;
                        entries[i].phase =
                            inner.fall_back(deadline, waker, outage.as_ref(), status);
                        drop(local);
                        return self.check(ticket, waker);
                    }
                    inner.write_unwritten_pause(&mut local, now);
                    inner.notify.notify_one();
                }
            }
            _ => {
                local.entries.remove(i);
            }
        }
        admission
    }

    fn release(&self, ticket: &Ticket) {
        let inner = &self.inner;
        if ticket.id() == ON_THE_SPOT {
            return;
        }
        let mut local = inner.lock();
        let Some(i) = find(&local.entries, ticket.id()) else {
            return;
        };
        let Some(entry) = local.entries.remove(i) else {
            return;
        };
        match entry.phase {
            Phase::Reserved { at, tats, .. } if at > Instant::now() => {
                local.releases.push(tats);
                inner.notify.notify_one();
            }
            Phase::Fallback(t) => {
                if let Some(fallback) = &inner.fallback {
                    fallback.release(&t);
                }
            }
            // NOTE: a request in a round trip is given back when the reply comes.
            _ => {}
        }
    }

    fn pause_until(&self, until: Instant) -> bool {
        let inner = &self.inner;
        let mut wake = Vec::new();
        let mut local = inner.lock();
        let moved = inner.pause_here(&mut local, until, NOT_WRITTEN, &mut wake);
        if moved && local.outage.is_none() && inner.ensure_tasks(&mut local) {
            local.pause_to_write = Some(until);
            inner.notify.notify_one();
        }
        drop(local);
        wake.into_iter().for_each(Waker::wake);
        moved
    }

    fn state(&self) -> BackendState {
        self.inner.state()
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.inner.lock();
        f.debug_struct("RedisBackend")
            .field("name", &self.inner.name)
            .field("quotas", &self.inner.quotas)
            .field("shared", &local.outage.is_none())
            .field("queued", &local.entries.len())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(tasks) = local.tasks.take() {
            tasks.driver.abort();
            tasks.pauses.abort();
        }
    }
}
