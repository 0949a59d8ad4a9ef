//! Properties of the in-process backend, driven with synthetic instants.

use std::task::Waker;
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
        let backend = InProcess::new(quotas.clone());
        let t0 = Instant::now();
        let mut times: Vec<Duration> = Vec::new();
        for ask in &asks {
            let ask = Duration::from_millis(*ask);
            let ticket = backend.reserve(t0 + ask, None, Waker::noop()).unwrap();
            let at = ticket.at() - t0;
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
        assert_conforms(&quotas, &times)?;
    }

    /// With releases and server pauses at random moments, what is admitted still conforms to
    /// every quota, keeps the asking order, and nothing goes during a pause.
    #[test]
    fn releases_and_pauses_stay_safe(
        quotas in proptest::collection::vec(quota(), 0..=2),
        events in proptest::collection::vec((0u64..400, 0u8..10, any::<prop::sample::Index>(), 1u64..200), 1..60),
    ) {
        let backend = InProcess::new(quotas.clone());
        let t0 = Instant::now();
        let mut events = events;
        events.sort_by_key(|e| e.0);
        // (ask order, ticket, last known instant)
        let mut live: Vec<(usize, Ticket, Duration)> = Vec::new();
        let mut admitted: Vec<(usize, Duration)> = Vec::new();
        let mut pauses: Vec<(Duration, Duration)> = Vec::new();
        let mut asked = 0;
        let collect = |now: Duration, live: &mut Vec<(usize, Ticket, Duration)>, admitted: &mut Vec<(usize, Duration)>| {
            live.retain_mut(|(order, ticket, at)| {
                match backend.check(ticket, t0 + now, Waker::noop()) {
                    Admission::Admitted => {
                        admitted.push((*order, *at));
                        false
                    }
                    Admission::WaitUntil(next) => {
                        *at = next - t0;
                        true
                    }
                }
            });
        };
        for (time, kind, pick, length) in events {
            let now = Duration::from_millis(time);
            collect(now, &mut live, &mut admitted);
            match kind {
                0..=5 => {
                    let ticket = backend.reserve(t0 + now, None, Waker::noop()).unwrap();
                    let at = ticket.at() - t0;
                    prop_assert!(at >= now);
                    if at <= now {
                        admitted.push((asked, at));
                    } else {
                        live.push((asked, ticket, at));
                    }
                    asked += 1;
                }
                6..=8 if !live.is_empty() => {
                    let (_, ticket, _) = live.remove(pick.index(live.len()));
                    backend.release(&ticket, t0 + now);
                }
                _ => {
                    let until = now + Duration::from_millis(length);
                    backend.pause_until(t0 + until, t0 + now);
                    pauses.push((now, until));
                }
            }
            collect(now, &mut live, &mut admitted);
        }
        collect(Duration::from_secs(3600), &mut live, &mut admitted);
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
        assert_conforms(&quotas, &times)?;
    }
}
