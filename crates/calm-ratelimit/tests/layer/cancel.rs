use calm_ratelimit::{Quota, RateLimitLayer};
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
async fn dropping_the_service_releases_its_place_and_clones_start_with_none() {
    let (inner, mut handle) = mock::pair::<http::Request<String>, http::Response<()>>();
    let layer = RateLimitLayer::new(Quota::per_second(n(10)));
    let limiter = layer.limiter().clone();
    let mut first = mock::Spawn::new(layer.layer(inner));

    assert_ready_ok!(first.poll_ready());
    // A clone holds nothing: it reserves its own place, behind.
    let mut second = mock::Spawn::new(first.get_ref().clone());
    assert_pending!(second.poll_ready());
    assert_eq!(limiter.snapshot().queued, 1);
    drop(second);
    assert_eq!(limiter.snapshot().queued, 0);
    assert_eq!(limiter.snapshot().next_free, Instant::now() + ms(100));

    let response = first.call(req("a"));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(http::Response::new(()));
    response.await.unwrap();
}
