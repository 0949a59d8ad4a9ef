//! A place is spent only when the request can go: whatever the inner service's readiness does,
//! requests reach it no faster than the quota allows.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use calm_ratelimit::{Quota, RateLimitLayer};
use http::{Request, Response};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

use crate::support::{self, ms, n, req, secs, serve};

#[tokio::test(start_paused = true)]
async fn requests_queued_behind_a_busy_inner_are_still_spaced() {
    let (inner, mut handle) = mock::pair();
    handle.allow(0);
    let svc = RateLimitLayer::new(Quota::per_second(n(2))).layer(inner);
    let tasks: Vec<_> = (0..4)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    tokio::time::sleep(secs(3)).await;
    // The inner service becomes ready at 3 s.
    handle.allow(100);
    let arrivals = serve(handle, support::ok);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Not four at once at 3 s: one place each, 500 ms apart, from 3 s on.
    assert_eq!(arrivals.times(), [ms(0), ms(500), ms(1000), ms(1500)]);
}

#[tokio::test(start_paused = true)]
async fn a_place_that_comes_while_the_inner_is_not_ready_is_spent() {
    let gate = Gate::new(true);
    let svc = RateLimitLayer::new(Quota::per_second(n(1))).layer(gate.clone());
    let first = tokio::spawn(svc.clone().oneshot(req("a")));
    let second = tokio::spawn(svc.clone().oneshot(req("b")));
    // "b" holds the place at 1 s; the inner is busy from 0.5 s to 1.2 s.
    tokio::time::sleep(ms(500)).await;
    gate.set(false);
    tokio::time::sleep(ms(700)).await;
    gate.set(true);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // The place at 1 s passed unused and is not given back: "b" goes at the next, 2 s.
    assert_eq!(gate.arrivals(), [ms(0), secs(2)]);
}

/// An inner service whose readiness a test opens and closes, recording when each request
/// reaches its `call`.
#[derive(Clone)]
struct Gate(Arc<Mutex<GateState>>);

struct GateState {
    open: bool,
    waiting: Vec<Waker>,
    start: Instant,
    arrivals: Vec<Duration>,
}

impl Gate {
    fn new(open: bool) -> Gate {
        Gate(Arc::new(Mutex::new(GateState {
            open,
            waiting: Vec::new(),
            start: Instant::now(),
            arrivals: Vec::new(),
        })))
    }

    fn set(&self, open: bool) {
        let mut state = self.0.lock().unwrap();
        state.open = open;
        if open {
            state.waiting.drain(..).for_each(Waker::wake);
        }
    }

    fn arrivals(&self) -> Vec<Duration> {
        self.0.lock().unwrap().arrivals.clone()
    }
}

impl Service<Request<String>> for Gate {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let mut state = self.0.lock().unwrap();
        if state.open {
            Poll::Ready(Ok(()))
        } else {
            state.waiting.push(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, _req: Request<String>) -> Self::Future {
        // NOTE: the instant the request is admitted at the inner service, not one the test saw
        // later.
        let mut state = self.0.lock().unwrap();
        let at = state.start.elapsed();
        state.arrivals.push(at);
        ready(Ok(Response::new(())))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// For `n` per `period` with burst `b`, GCRA spaces admissions so that for `i < j`,
    /// `t_j - t_i >= (j - i + 1 - b) * interval`, with `interval = ceil(period / n)`. So
    /// `n + b` arrivals span at least `n * interval >= period`, and every half-open window
    /// `[t, t + period)` holds at most `n + b - 1` of them. Requests reach the inner service
    /// only at the instants of places of their own (a subset of a conforming sequence), so
    /// the bound holds at the inner service whatever its readiness does.
    #[test]
    fn no_window_at_the_inner_holds_more_than_the_quota_allows(
        per in 1u32..=5,
        period_ms in 10u64..=200,
        burst in 1u32..=4,
        callers in 1usize..=4,
        each in 1usize..=6,
        starts in proptest::collection::vec(0u64..300, 4),
        toggles in proptest::collection::vec(1u64..150, 0..12),
        start_open in any::<bool>(),
    ) {
        let period = Duration::from_millis(period_ms);
        let quota = Quota::per_period(n(per), period).unwrap().burst(n(burst));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let arrivals = rt.block_on(async {
            let gate = Gate::new(start_open);
            let svc = RateLimitLayer::new(quota).layer(gate.clone());
            let controller = {
                let gate = gate.clone();
                tokio::spawn(async move {
                    let mut open = start_open;
                    for delay in toggles {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        open = !open;
                        gate.set(open);
                    }
                    gate.set(true);
                })
            };
            let tasks: Vec<_> = (0..callers)
                .map(|c| {
                    let svc = svc.clone();
                    let start = Duration::from_millis(starts[c]);
                    tokio::spawn(async move {
                        tokio::time::sleep(start).await;
                        for i in 0..each {
                            svc.clone().oneshot(req(format!("{c}-{i}"))).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            controller.await.unwrap();
            gate.arrivals()
        });
        prop_assert_eq!(arrivals.len(), callers * each);
        let most = (per + burst - 1) as usize;
        let mut sorted = arrivals.clone();
        sorted.sort();
        for (i, t) in sorted.iter().enumerate() {
            let in_window = sorted[i..].iter().take_while(|u| **u < *t + period).count();
            prop_assert!(
                in_window <= most,
                "{in_window} arrivals in [{t:?}, {:?}), at most {most}: {sorted:?}",
                *t + period
            );
        }
    }
}
