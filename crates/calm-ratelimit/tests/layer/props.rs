//! Properties of the in-process backend, driven on paused tokio time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

use calm_ratelimit::backend::{Admission, Backend, InProcess, Ticket};
use calm_ratelimit::Quota;
use proptest::prelude::*;
use tokio::time::Instant;

fn quota() -> impl Strategy<Value = Quota> {
    (1u64..=50, 1u32..=4).prop_map(|(interval_ms, burst)| {
        Quota::with_period(Duration::from_millis(interval_ms))
            .unwrap()
            .burst(std::num::NonZeroU32::new(burst).unwrap())
    })
}

/// Every admitted sequence must satisfy, for every quota and every `i < j`,
/// `t_j - t_i >= (j - i + 1 - burst) * interval`: no window admits more than it allows.
fn assert_conforms(quotas: &[Quota], times: &[Duration]) -> Result<(), TestCaseError> {
    for q in quotas {
        let b = i64::from(q.burst_size().get());
        for j in 0..times.len() {
            for i in 0..j {
                let spans = j as i64 - i as i64 + 1 - b;
                if spans > 0 {
                    prop_assert!(
                        times[j] - times[i] >= q.interval() * spans as u32,
                        "{q:?}: t[{i}]={:?} t[{j}]={:?}",
                        times[i],
                        times[j]
                    );
                }
            }
        }
    }
    Ok(())
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

async fn advance_to(t: Instant) {
    tokio::time::advance(t.saturating_duration_since(Instant::now())).await;
}

/// A holder's waker: remembers that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A simulated holder, as the limiter's waiter behaves: it checks its ticket when woken and
/// when the instant it was told comes, and sleeps until the instant `check` names.
struct Holder {
    order: usize,
    ticket: Ticket,
    told: Duration,
    flag: Arc<Flag>,
    waker: Waker,
}

impl Holder {
    fn due(&self, now: Duration) -> bool {
        self.told <= now || self.flag.0.load(Ordering::SeqCst)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Safe and work-conserving: each request goes at exactly the earliest instant at which
    /// every quota admits it (given the earlier ones) and not before it asked.
    #[test]
    fn admits_at_the_earliest_conforming_instant(
        quotas in proptest::collection::vec(quota(), 1..=3),
        mut asks in proptest::collection::vec(0u64..300, 1..40),
    ) {
        asks.sort_unstable();
        paused_runtime().block_on(async {
            let backend = InProcess::new(quotas.clone());
            let t0 = Instant::now();
            let mut times: Vec<Duration> = Vec::new();
            for ask in &asks {
                let ask = Duration::from_millis(*ask);
                advance_to(t0 + ask).await;
                let ticket = backend.reserve(None, Waker::noop()).unwrap();
                let at = ticket.at().expect("in-process tickets know their instant") - t0;
                let earliest = quotas.iter().fold(ask, |acc, q| {
                    let k = times.len() as i64;
                    let b = i64::from(q.burst_size().get());
                    times.iter().enumerate().fold(acc, |acc, (i, t)| {
                        let spans = k - i as i64 + 1 - b;
                        if spans > 0 { acc.max(*t + q.interval() * spans as u32) } else { acc }
                    })
                });
                prop_assert_eq!(at, earliest);
                if let Some(last) = times.last() {
                    prop_assert!(at >= *last, "FIFO");
                }
                times.push(at);
            }
            assert_conforms(&quotas, &times)
        })?;
    }

    /// With releases and server pauses at random moments, what is admitted still conforms to
    /// every quota, keeps the asking order, and nothing goes during a pause.
    ///
    /// NOTE: each holder is simulated as the limiter's waiter behaves: it checks its ticket
    /// only when woken or when the instant it was told comes, and the instant recorded is the
    /// one at which `check` (or `reserve`) *admitted* it, not the last instant it was told.
    /// So a backend that forgets to wake a holder, or admits one earlier than it said, fails
    /// here.
    #[test]
    fn releases_and_pauses_stay_safe(
        quotas in proptest::collection::vec(quota(), 0..=2),
        events in proptest::collection::vec((0u64..400, 0u8..10, any::<prop::sample::Index>(), 1u64..200), 1..60),
    ) {
        let mut events = events;
        events.sort_by_key(|e| e.0);
        paused_runtime().block_on(async {
            let backend = InProcess::new(quotas.clone());
            let t0 = Instant::now();
            let mut live: Vec<Holder> = Vec::new();
            let mut admitted: Vec<(usize, Duration)> = Vec::new();
            let mut pauses: Vec<(Duration, Duration)> = Vec::new();
            let mut asked = 0;
            let mut events = events.into_iter().peekable();
            loop {
                let now = Instant::now() - t0;
                // Holders whose moment has come check their tickets, until none is due.
                while let Some(i) = live.iter().position(|h| h.due(now)) {
                    let holder = &mut live[i];
                    holder.flag.0.store(false, Ordering::SeqCst);
                    match backend.check(&holder.ticket, &holder.waker) {
                        Admission::Admitted => {
                            admitted.push((holder.order, now));
                            live.remove(i);
                        }
                        Admission::WaitUntil(at) => {
                            let at = at - t0;
                            prop_assert!(at > now, "told to wait until {at:?} at {now:?}");
                            holder.told = at;
                        }
                        other => prop_assert!(false, "in-process backend answered {other:?}"),
                    }
                }
                let next_event = events.peek().map(|e| Duration::from_millis(e.0));
                let next_wake = live.iter().map(|h| h.told).min();
                let next = match (next_event, next_wake) {
                    (Some(e), Some(w)) => e.min(w),
                    (e, w) => match e.or(w) {
                        Some(t) => t,
                        None => break,
                    },
                };
                advance_to(t0 + next).await;
                if next_event != Some(next) {
                    continue;
                }
                let Some((_, kind, pick, length)) = events.next() else { break };
                match kind {
                    0..=5 => {
                        let flag = Arc::new(Flag::default());
                        let waker = Waker::from(Arc::clone(&flag));
                        let ticket = backend.reserve(None, &waker).unwrap();
                        let at = ticket.at().expect("in-process tickets know their instant") - t0;
                        prop_assert!(at >= next);
                        if at <= next {
                            admitted.push((asked, next));
                        } else {
                            live.push(Holder { order: asked, ticket, told: at, flag, waker });
                        }
                        asked += 1;
                    }
                    6..=8 if !live.is_empty() => {
                        let holder = live.remove(pick.index(live.len()));
                        backend.release(&holder.ticket);
                    }
                    _ => {
                        let until = next + Duration::from_millis(length);
                        backend.pause_until(t0 + until);
                        pauses.push((next, until));
                    }
                }
            }
            prop_assert!(live.is_empty());
            admitted.sort_by_key(|(order, _)| *order);
            let times: Vec<Duration> = admitted.iter().map(|(_, t)| *t).collect();
            for pair in times.windows(2) {
                prop_assert!(pair[0] <= pair[1], "FIFO: {:?}", times);
            }
            for t in &times {
                for (from, until) in &pauses {
                    prop_assert!(!(*from < *t && *t < *until), "{t:?} inside pause {from:?}..{until:?}");
                }
            }
            assert_conforms(&quotas, &times)
        })?;
    }
}
