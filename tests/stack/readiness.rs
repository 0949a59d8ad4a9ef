//! A place is spent only when the request can go, through the whole client: whatever the
//! readiness of the transport below (closed for random stretches) and the in-flight limit,
//! no window at the transport holds more than the quota allows.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use calm::{Body, Client, Quota};
use http::{Request, Response};
use proptest::prelude::*;
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::support::{immediate_retries, BASE};

/// A transport that is not ready during the scripted stretches, and records the instant of
/// every `call`.
struct Gate {
    start: Instant,
    closed: Arc<Vec<(Duration, Duration)>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Clone for Gate {
    fn clone(&self) -> Gate {
        Gate {
            start: self.start,
            closed: Arc::clone(&self.closed),
            arrivals: Arc::clone(&self.arrivals),
            sleep: None,
        }
    }
}

impl Gate {
    fn new(closed: Vec<(Duration, Duration)>) -> Gate {
        Gate {
            start: Instant::now(),
            closed: Arc::new(closed),
            arrivals: Arc::default(),
            sleep: None,
        }
    }

    /// The end of the closed stretch `now` falls in, if any.
    fn closed_until(&self, now: Instant) -> Option<Instant> {
        let t = now - self.start;
        self.closed
            .iter()
            .find(|(from, until)| *from <= t && t < *until)
            .map(|(_, until)| self.start + *until)
    }
}

impl Service<Request<Body>> for Gate {
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<Response<Body>, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            let Some(until) = self.closed_until(Instant::now()) else {
                self.sleep = None;
                return Poll::Ready(Ok(()));
            };
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
            if sleep.deadline() != until {
                sleep.as_mut().reset(until);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        self.arrivals.lock().unwrap().push(Instant::now());
        std::future::ready(Ok(Response::new(Body::empty())))
    }
}

fn stretches() -> impl Strategy<Value = Vec<(Duration, Duration)>> {
    prop::collection::vec((0u64..4_000, 1u64..1_500), 0..6).prop_map(|spans| {
        spans
            .into_iter()
            .map(|(from, len)| {
                (
                    Duration::from_millis(from),
                    Duration::from_millis(from + len),
                )
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_window_at_the_transport_holds_more_than_the_quota(
        per_second in 1u32..8,
        burst in 1u32..4,
        max_in_flight in prop::option::of(1usize..4),
        callers in 1usize..5,
        each in 1usize..6,
        closed in stretches(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let arrivals = runtime.block_on(async move {
            let gate = Gate::new(closed);
            let arrivals = Arc::clone(&gate.arrivals);
            let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap())
                .burst(NonZeroU32::new(burst).unwrap());
            let mut builder = Client::builder(BASE).retry(immediate_retries()).rate_limit(quota);
            if let Some(max) = max_in_flight {
                builder = builder.max_in_flight(max);
            }
            let client = builder.build_with(gate).unwrap();
            let tasks: Vec<_> = (0..callers)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        for _ in 0..each {
                            client.get("/x").send().await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let arrivals = arrivals.lock().unwrap().clone();
            arrivals
        });
        prop_assert_eq!(arrivals.len(), callers * each);
        // NOTE: GCRA lets `burst` go at once and then one per interval: n + burst - 1 arrivals
        // span at least (n - 1) intervals, so a half-open window of one period holds at most
        // n + burst - 1 of them.
        let allowed = (per_second + burst - 1) as usize;
        let mut sorted = arrivals;
        sorted.sort();
        for (i, start) in sorted.iter().enumerate() {
            let inside = sorted[i..]
                .iter()
                .take_while(|t| **t < *start + Duration::from_secs(1))
                .count();
            prop_assert!(inside <= allowed, "{} in one second (allowed {})", inside, allowed);
        }
    }
}
