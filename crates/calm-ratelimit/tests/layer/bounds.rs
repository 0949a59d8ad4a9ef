use calm_ratelimit::error::MaxWaitExceeded;
use calm_ratelimit::{Limiter, MaxWait, Quota, RateLimitLayer};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::{Layer, ServiceExt};
use tower_test::mock;

use crate::support::{self, ms, n, req, secs, serve};

#[tokio::test(start_paused = true)]
async fn max_wait_fails_at_once_with_the_instant() {
    let limiter = Limiter::new(Quota::per_second(n(1)));
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let bounded = RateLimitLayer::from_limiter(limiter.clone())
        .max_wait(ms(1500))
        .layer(inner.clone());
    let patient = RateLimitLayer::from_limiter(limiter.clone()).layer(inner);
    let start = Instant::now();

    bounded.clone().oneshot(req("0")).await.unwrap();
    // Place at 1 s: within the bound, so it waits.
    let second = tokio::spawn(bounded.clone().oneshot(req("1")));
    support::settle().await;
    // Place at 2 s: 2 s away, over the bound.
    let err = bounded.clone().oneshot(req("2")).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(0), "failed at once");
    let err = err.downcast_ref::<MaxWaitExceeded>().expect("typed error");
    assert_eq!(err.available_at(), start + secs(2));
    assert_eq!(err.wait(), secs(2));
    assert_eq!(err.max_wait(), ms(1500));

    // No capacity lost: the next caller gets the refused place at 2 s.
    patient.oneshot(req("3")).await.unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(arrivals.names(), ["0", "1", "3"]);
    assert_eq!(arrivals.times(), [secs(0), secs(1), secs(2)]);
    assert_eq!(limiter.snapshot().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_comes_from_the_response_future_and_never_reaches_the_inner() {
    let (mut svc, mut handle) = mock::spawn_layer::<http::Request<String>, http::Response<()>, _>(
        RateLimitLayer::new(Quota::per_second(n(1))).max_wait(ms(0)),
    );
    assert_ready_ok!(svc.poll_ready());
    let first = svc.call(req("a"));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(http::Response::new(()));
    first.await.unwrap();

    // poll_ready is the inner's readiness; the refusal is the response future's error.
    assert_ready_ok!(svc.poll_ready());
    let err = svc.call(req("b")).await.unwrap_err();
    assert!(err.is::<MaxWaitExceeded>());
    assert_pending!(handle.poll_request());
}

#[tokio::test(start_paused = true)]
async fn a_request_max_wait_bounds_that_request_only() {
    let limiter = Limiter::new(Quota::per_second(n(1)));
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::from_limiter(limiter.clone())
        .max_wait(ms(1500))
        .layer(inner);
    let start = Instant::now();
    svc.clone().oneshot(req("0")).await.unwrap();

    // Its own deadline is tighter than the layer's: refused at once, naming the place.
    let mut bounded = req("1");
    bounded
        .extensions_mut()
        .insert(MaxWait::until(start + ms(999)));
    let err = svc.clone().oneshot(bounded).await.unwrap_err();
    let err = err.downcast_ref::<MaxWaitExceeded>().expect("typed error");
    assert_eq!(err.available_at(), start + secs(1));
    assert_eq!(err.max_wait(), ms(999));
    assert!(!err.is_paused());
    assert_eq!(start.elapsed(), ms(0));

    // A looser bound of its own: the place at 1 s is within both.
    let mut loose = req("2");
    loose.extensions_mut().insert(MaxWait::new(secs(3600)));
    let waiting = tokio::spawn(svc.clone().oneshot(loose));
    support::settle().await;
    // The layer's bound still applies: the place at 2 s is 2 s away, over 1.5 s.
    let mut over_layer = req("3");
    over_layer.extensions_mut().insert(MaxWait::new(secs(3600)));
    let err = svc.clone().oneshot(over_layer).await.unwrap_err();
    let err = err.downcast_ref::<MaxWaitExceeded>().expect("typed error");
    assert_eq!(
        (err.available_at(), err.max_wait()),
        (start + secs(2), ms(1500))
    );
    waiting.await.unwrap().unwrap();
    assert_eq!(arrivals.names(), ["0", "2"]);
    assert_eq!(arrivals.times(), [secs(0), secs(1)]);
    assert_eq!(limiter.snapshot().rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_whose_bound_falls_inside_a_new_pause_fails_at_once_naming_it() {
    let limiter = Limiter::new(Quota::per_second(n(1)));
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::from_limiter(limiter.clone()).layer(inner);
    let start = Instant::now();
    svc.clone().oneshot(req("0")).await.unwrap();

    let mut bounded = req("1");
    bounded.extensions_mut().insert(MaxWait::new(secs(5)));
    let waiter = tokio::spawn(svc.clone().oneshot(bounded));
    tokio::time::sleep(ms(100)).await;
    // The server pauses everyone for 30 s while "1" waits for its place at 1 s.
    limiter.pause_until(start + secs(30));
    let err = waiter.await.unwrap().unwrap_err();
    let err = err.downcast_ref::<MaxWaitExceeded>().expect("typed error");
    assert_eq!(
        start.elapsed(),
        ms(100),
        "failed when the pause came, not at its bound"
    );
    assert_eq!(err.paused_until(), Some(start + secs(30)));
    assert_eq!(err.available_at(), start + secs(30));
    assert!(
        err.to_string().contains("the server paused requests"),
        "{err}"
    );
    assert_eq!(arrivals.names(), ["0"]);
    assert_eq!(limiter.snapshot().queued, 0);
}

#[tokio::test(start_paused = true)]
async fn a_zero_max_wait_goes_only_when_free() {
    let limiter = Limiter::new(Quota::per_second(n(10)));
    assert!(limiter.try_acquire().is_ok());
    let err = limiter.try_acquire().unwrap_err();
    assert_eq!(err.available_at(), Instant::now() + ms(100));
    tokio::time::sleep(ms(100)).await;
    assert!(limiter.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_its_turn() {
    let limiter = Limiter::new(Quota::per_second(n(2)));
    let start = Instant::now();
    limiter.acquire().await.unwrap();
    let mut second = task::spawn(limiter.acquire());
    assert_pending!(second.poll());
    tokio::time::sleep(ms(499)).await;
    assert_pending!(second.poll());
    tokio::time::sleep(ms(1)).await;
    assert!(second.is_woken());
    second.await.unwrap();
    assert_eq!(start.elapsed(), ms(500));
}
