//! A stalled process: waiters whose instants passed while nobody ran must still reach the inner
//! service spaced by the quota, measured at the instants they actually go.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calm_ratelimit::{Limiter, Quota, RateLimitLayer};
use tokio::time::Instant;
use tokio_test::task;
use tower::{service_fn, Layer, Service, ServiceExt};

use crate::support::{ms, n, req, secs};

/// Polls every task not done yet, in slice order, recording when each one completes.
fn drive<F: std::future::Future>(tasks: &mut [task::Spawn<F>], done: &mut [Option<Instant>]) {
    for (t, done) in tasks.iter_mut().zip(done.iter_mut()) {
        if done.is_none() && t.poll().is_ready() {
            *done = Some(Instant::now());
        }
    }
}

fn assert_spaced(times: &[Duration], gap: Duration) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        assert!(pair[1] - pair[0] >= gap, "{sorted:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_late_to_their_places_are_still_spaced_when_they_go() {
    let limiter = Limiter::new(Quota::per_second(n(10)));
    let start = Instant::now();
    limiter.acquire().await; // the place at 0 ms is spent
    let mut tasks: Vec<_> = (0..10).map(|_| task::spawn(limiter.acquire())).collect();
    let mut done = vec![None; tasks.len()];
    drive(&mut tasks, &mut done);
    assert_eq!(limiter.snapshot().queued, 10);
    // The process stalls for 2 s: every place (100 ms .. 1 s) passes while nobody polls.
    tokio::time::advance(secs(2)).await;
    while done.iter().any(Option::is_none) {
        drive(&mut tasks, &mut done);
        tokio::time::advance(ms(1)).await;
    }
    let times: Vec<Duration> = done.iter().map(|t| t.unwrap() - start).collect();
    assert_eq!(times.iter().min(), Some(&secs(2)));
    assert_spaced(&times, ms(100));
    let snap = limiter.snapshot();
    assert_eq!(snap.waits, 10);
    assert_eq!(snap.queued, 0);
}

#[tokio::test(start_paused = true)]
async fn waiters_late_in_reverse_order_are_still_spaced_at_the_inner_service() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&arrivals);
    let start = Instant::now();
    let inner = service_fn(move |_req: http::Request<String>| {
        record.lock().unwrap().push(start.elapsed());
        async { Ok::<_, Infallible>(http::Response::new(())) }
    });
    let layer = RateLimitLayer::new(Quota::per_second(n(10)));
    let mut svc = layer.layer(inner);
    let mut tasks = Vec::new();
    for i in 0..10 {
        svc.ready().await.unwrap();
        tasks.push(task::spawn(svc.call(req(i.to_string()))));
    }
    let mut done = vec![None; tasks.len()];
    drive(&mut tasks, &mut done);
    tokio::time::advance(secs(2)).await;
    // The last in line runs first after the stall (another thread's timers, say).
    tasks.reverse();
    done.reverse();
    while done.iter().any(Option::is_none) {
        drive(&mut tasks, &mut done);
        tokio::time::advance(ms(1)).await;
    }
    let times = arrivals.lock().unwrap().clone();
    assert_eq!(times.len(), 10);
    assert_eq!(times[0], ms(0));
    assert_spaced(&times[1..], ms(100));
    assert_eq!(layer.limiter().snapshot().queued, 0);
}

/// A timer's own lateness (tokio fires on whole milliseconds) is not a stall: places that do
/// not fall on a millisecond keep their exact schedule, with no drift.
#[tokio::test(start_paused = true)]
async fn timer_rounding_does_not_slow_the_schedule() {
    let limiter = Limiter::new(Quota::per_second(n(3)));
    let start = Instant::now();
    for _ in 0..31 {
        limiter.acquire().await;
    }
    // 30 intervals of 333.3 ms: 10 s, give or take the last timer's rounding.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= secs(10) && elapsed < secs(10) + ms(2),
        "{elapsed:?}"
    );
}
