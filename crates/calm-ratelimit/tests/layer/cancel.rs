use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use calm_ratelimit::{Limiter, Quota, RateLimitLayer};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready_ok};
use tower::{Layer, ServiceExt};
use tower_test::mock;

use crate::support::{self, ms, n, req, serve};

#[tokio::test(start_paused = true)]
async fn dropped_waiters_give_their_places_back() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::new(Quota::per_second(n(10))).layer(inner);
    let limiter = svc.limiter().clone();

    let tasks: Vec<_> = (0..20)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    support::settle().await;
    // The first went at once; 19 hold places at 100 ms .. 1900 ms.
    assert_eq!(limiter.snapshot().queued, 19);
    assert_eq!(limiter.snapshot().next_free, Instant::now() + ms(2000));

    let mut kept = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if i % 2 == 1 {
            task.abort();
        } else {
            kept.push(task);
        }
    }
    support::settle().await;
    assert_eq!(limiter.snapshot().queued, 9);
    assert_eq!(limiter.snapshot().next_free, Instant::now() + ms(1000));

    for task in kept {
        task.await.unwrap().unwrap();
    }
    // The ten that stayed are served back to back at the quota's pace: no gaps.
    let expected: Vec<_> = (0..10).map(|k| ms(100 * k)).collect();
    assert_eq!(arrivals.times(), expected);
    let names: Vec<String> = (0..20).step_by(2).map(|i: i32| i.to_string()).collect();
    assert_eq!(arrivals.names(), names);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_midway_moves_the_rest_up_from_then() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::new(Quota::per_second(n(1))).layer(inner);

    let a = tokio::spawn(svc.clone().oneshot(req("a")));
    let b = tokio::spawn(svc.clone().oneshot(req("b")));
    let c = tokio::spawn(svc.clone().oneshot(req("c")));
    let d = tokio::spawn(svc.clone().oneshot(req("d")));
    tokio::time::sleep(ms(1500)).await;
    // a went at 0 s and b at 1 s; c waits for 2 s, d for 3 s.
    c.abort();
    support::settle().await;
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    d.await.unwrap().unwrap();
    assert_eq!(arrivals.names(), ["a", "b", "d"]);
    assert_eq!(arrivals.times(), [ms(0), ms(1000), ms(2000)]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_response_future_releases_its_place_and_the_service_holds_none() {
    let (inner, mut handle) = mock::pair::<http::Request<String>, http::Response<()>>();
    let layer = RateLimitLayer::new(Quota::per_second(n(10)));
    let limiter = layer.limiter().clone();
    let mut svc = mock::Spawn::new(layer.layer(inner));

    // Readiness takes no place.
    assert_ready_ok!(svc.poll_ready());
    assert_ready_ok!(svc.poll_ready());
    assert_eq!(limiter.snapshot().next_free, Instant::now());
    let first = svc.call(req("a"));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(http::Response::new(()));
    first.await.unwrap();

    // The next call's place is at 100 ms; its future holds it...
    assert_ready_ok!(svc.poll_ready());
    let mut second = tokio_test::task::spawn(svc.call(req("b")));
    assert_pending!(second.poll());
    assert_eq!(limiter.snapshot().queued, 1);
    // ...until dropped.
    drop(second);
    assert_eq!(limiter.snapshot().queued, 0);
    assert_eq!(limiter.snapshot().next_free, Instant::now() + ms(100));
    assert_pending!(handle.poll_request());
}

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: F,
    polls: Arc<AtomicUsize>,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll(cx)
    }
}

const WAITERS: usize = 10_000;

/// 10 000 waiters on 1000 per second; every other one gives up at `give_up(i)` (or is
/// aborted at once when `None`). Returns the polls per waiter, all polls of all waiters
/// counted, and checks the ones that stayed were served back to back.
async fn polls_per_waiter(give_up: impl Fn(usize) -> Option<Duration>) -> f64 {
    let limiter = Limiter::new(Quota::per_second(n(1000)));
    let polls = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..WAITERS {
        let acquire = Counted {
            inner: limiter.acquire(),
            polls: Arc::clone(&polls),
        };
        match (i % 2 == 1).then(|| give_up(i)) {
            None => kept.push(tokio::spawn(async move {
                acquire.await.unwrap();
                Instant::now()
            })),
            Some(Some(after)) => {
                dropped.push(tokio::spawn(tokio::time::timeout(after, acquire)));
            }
            Some(None) => dropped.push(tokio::spawn(async move { Ok(acquire.await) })),
        }
    }
    // Every task runs once (time does not move while they are runnable).
    for _ in 0..WAITERS {
        if limiter.snapshot().queued == WAITERS - 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(limiter.snapshot().queued, WAITERS - 1);
    assert_eq!(Instant::now(), start);
    if give_up(1).is_none() {
        for task in &dropped {
            task.abort();
        }
    }
    for task in dropped {
        // NOTE: a timed-out waiter returns Err(Elapsed), an aborted one a JoinError.
        let _ = task.await;
    }
    let mut last = start;
    for (k, task) in kept.into_iter().enumerate() {
        let at = task.await.unwrap();
        assert!(at >= last, "FIFO");
        last = at;
        // NOTE: with timeouts, a waiter gone after its own instant spent its place.
        if give_up(1).is_none() {
            assert_eq!(at - start, ms(k as u64), "waiter {k}");
        }
    }
    polls.load(Ordering::Relaxed) as f64 / WAITERS as f64
}

#[tokio::test(start_paused = true)]
async fn half_of_ten_thousand_waiters_cancelling_costs_a_few_polls_each() {
    let per_waiter = polls_per_waiter(|_| None).await;
    eprintln!("aborted at once: {per_waiter:.3} polls per waiter");
    assert!(per_waiter <= 4.0, "{per_waiter} polls per waiter");
}

#[tokio::test(start_paused = true)]
async fn waiters_giving_up_one_by_one_cost_a_few_polls_each() {
    // Waiter i gives up after (i * 7) % 5000 ms: some before their place, some after.
    let per_waiter = polls_per_waiter(|i| Some(ms((i as u64 * 7) % 5000))).await;
    eprintln!("timeouts: {per_waiter:.3} polls per waiter");
    assert!(per_waiter <= 4.0, "{per_waiter} polls per waiter");
}
