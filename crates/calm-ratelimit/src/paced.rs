//! [`Paced`]: a learned rate in front of a backend that has none of its own.
//!
//! An [`Adaptive`](crate::Adaptive) limiter over a custom backend (calm-ratelimit-redis's,
//! say) paces at its learned rate in this process, through an in-process lane of its own,
//! and takes its place in the backend too: a request goes at the later of its two places.
//! Both are first come, first served, so the order holds. The backend's place of a request
//! that the learned rate holds back longer is spent unused: while the learned rate binds, the
//! server is throttling, and the backend's quota is not what limits anyone.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::task::Waker;

use tokio::time::Instant;

use crate::backend::{Admission, Backend, BackendState, InProcess, Ticket};
use crate::Quota;

/// `inner`, and a learned rate in front of it.
pub(crate) struct Paced<B> {
    pacer: InProcess,
    inner: B,
    /// The two tickets behind each ticket handed out (none for places taken on the spot).
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    next_id: u64,
    tickets: HashMap<u64, (Ticket, Ticket)>,
}

/// The id of a place both took on the spot: nothing is held for it.
const ON_THE_SPOT: u64 = 0;

impl<B: Backend> Paced<B> {
    /// `inner` paced at `per_second` as well (no limit of its own if `None`).
    pub(crate) fn new(inner: B, per_second: Option<f64>) -> Paced<B> {
        Paced {
            pacer: InProcess::with_learned_rate([], per_second),
            inner,
            held: Mutex::new(Held {
                next_id: ON_THE_SPOT + 1,
                tickets: HashMap::new(),
            }),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The later of two instants, if both are known.
fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    Some(a?.max(b?))
}

impl<B: Backend> Backend for Paced<B> {
    fn reserve(&self, deadline: Option<Instant>, waker: &Waker) -> Result<Ticket, Instant> {
        let paced = self.pacer.reserve(deadline, waker)?;
        let place = match self.inner.reserve(deadline, waker) {
            Ok(place) => place,
            Err(at) => {
                self.pacer.release(&paced);
                return Err(at);
            }
        };
        if paced.is_admitted() && place.is_admitted() {
            let at = later(paced.at(), place.at()).unwrap_or_else(Instant::now);
            return Ok(Ticket::admitted(ON_THE_SPOT, at));
        }
        let mut held = self.held();
        let id = held.next_id;
        held.next_id += 1;
        held.tickets.insert(id, (paced, place));
        Ok(match later(paced.at(), place.at()) {
            Some(at) => Ticket::new(id, at),
            None => Ticket::deciding(id),
        })
    }

    fn check(&self, ticket: &Ticket, waker: &Waker) -> Admission {
        if ticket.id() == ON_THE_SPOT {
            return Admission::Admitted;
        }
        let Some((paced, place)) = self.held().tickets.get(&ticket.id()).copied() else {
            return Admission::Admitted;
        };
        let admission = match (
            self.pacer.check(&paced, waker),
            self.inner.check(&place, waker),
        ) {
            (Admission::Refused(at), _) | (_, Admission::Refused(at)) => Admission::Refused(at),
            (Admission::Unavailable(e), _) | (_, Admission::Unavailable(e)) => {
                Admission::Unavailable(e)
            }
            (Admission::Deciding, _) | (_, Admission::Deciding) => return Admission::Deciding,
            (Admission::Admitted, Admission::Admitted) => Admission::Admitted,
            (Admission::WaitUntil(at), Admission::Admitted)
            | (Admission::Admitted, Admission::WaitUntil(at)) => Admission::WaitUntil(at),
            (Admission::WaitUntil(a), Admission::WaitUntil(b)) => Admission::WaitUntil(a.max(b)),
        };
        if matches!(admission, Admission::Refused(_) | Admission::Unavailable(_)) {
            // NOTE: one side refused: the other's place is not wanted any more.
            self.release(ticket);
        } else if matches!(admission, Admission::Admitted) {
            self.held().tickets.remove(&ticket.id());
        }
        admission
    }

    fn release(&self, ticket: &Ticket) {
        let Some((paced, place)) = self.held().tickets.remove(&ticket.id()) else {
            return;
        };
        self.pacer.release(&paced);
        self.inner.release(&place);
    }

    fn pause_until(&self, until: Instant) -> bool {
        self.inner.pause_until(until)
    }

    fn state(&self) -> BackendState {
        let mut state = self.inner.state();
        let paced = self.pacer.state();
        state.next_free = state.next_free.max(paced.next_free);
        // NOTE: a caller may wait in both: the larger figures are the lower bounds.
        state.queued = state.queued.max(paced.queued);
        state.waits = state.waits.max(paced.waits);
        state.total_waited = state.total_waited.max(paced.total_waited);
        state
    }

    fn quotas(&self) -> &[Quota] {
        self.inner.quotas()
    }

    fn set_learned_rate(&self, per_second: f64) -> bool {
        self.pacer.set_learned_rate(per_second)
    }
}

impl<B: fmt::Debug> fmt::Debug for Paced<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paced")
            .field("pacer", &self.pacer)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_learned_rate_and_the_backend_pace_together_and_nothing_stays_held() {
        let quota = Quota::per_second(NonZeroU32::new(20).unwrap());
        let paced = Paced::new(InProcess::new([quota]), Some(10.0));
        let start = Instant::now();
        let waker = Waker::noop();
        // The learned 10/s binds over the backend's 20/s: places 100 ms apart.
        let first = paced.reserve(None, waker).unwrap();
        assert!(first.is_admitted());
        let second = paced.reserve(None, waker).unwrap();
        assert_eq!(second.at(), Some(start + Duration::from_millis(100)));
        // A place past the deadline is refused, and its other half given back.
        let refused = paced.reserve(Some(start + Duration::from_millis(150)), waker);
        assert_eq!(refused.unwrap_err(), start + Duration::from_millis(200));
        // Given back: the next caller takes its place.
        paced.release(&second);
        let third = paced.reserve(None, waker).unwrap();
        assert_eq!(third.at(), Some(start + Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(matches!(paced.check(&third, waker), Admission::Admitted));
        assert!(paced.held().tickets.is_empty());
    }
}
