use std::future::{ready, Ready};

use calm_ratelimit::error::MaxWaitExceeded;
use calm_ratelimit::{Quota, RateLimitLayer};
use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready_ok};
use tower::buffer::Buffer;
use tower::retry::{Policy, RetryLayer};
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_test::mock;

use crate::support::{self, ms, n, req, secs, serve};

#[tokio::test(start_paused = true)]
async fn no_place_is_taken_while_the_inner_is_not_ready() {
    let (mut svc, mut handle) = mock::spawn_layer::<Request<String>, Response<()>, _>(
        RateLimitLayer::new(Quota::per_second(n(10))),
    );
    let limiter = svc.get_ref().limiter().clone();

    handle.allow(0);
    assert_pending!(svc.poll_ready());
    tokio::time::sleep(ms(250)).await;
    assert_pending!(svc.poll_ready());
    // Nothing reserved while the inner was busy: the next place is still free now.
    assert_eq!(limiter.snapshot().next_free, Instant::now());
    assert_eq!(limiter.snapshot().queued, 0);

    handle.allow(2);
    assert!(svc.is_woken());
    assert_ready_ok!(svc.poll_ready());
    let response = svc.call(req("a"));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.body(), "a");
    send.send_response(Response::new(()));
    response.await.unwrap();

    // The next request waits for its place (100 ms) in its response future.
    assert_ready_ok!(svc.poll_ready());
    let mut response = tokio_test::task::spawn(svc.call(req("b")));
    assert_pending!(response.poll());
    assert_pending!(handle.poll_request());
    tokio::time::sleep(ms(100)).await;
    assert!(response.is_woken());
    assert_pending!(response.poll());
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.body(), "b");
    send.send_response(Response::new(()));
    response.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn inner_poll_ready_errors_pass_through() {
    let (mut svc, mut handle) = mock::spawn_layer::<Request<String>, Response<()>, _>(
        RateLimitLayer::new(Quota::per_second(n(10))),
    );
    handle.send_error("inner broke");
    let err = svc.poll_ready().map_err(|e| e.to_string());
    assert_eq!(err, std::task::Poll::Ready(Err("inner broke".to_string())));
}

#[tokio::test(start_paused = true)]
async fn through_a_buffer() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let layer = RateLimitLayer::new(Quota::per_second(n(2)));
    let svc = Buffer::new(layer.layer(inner), 16);

    let tasks: Vec<_> = (0..4)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(arrivals.names(), ["0", "1", "2", "3"]);
    assert_eq!(arrivals.times(), [ms(0), ms(500), ms(1000), ms(1500)]);
}

#[tokio::test(start_paused = true)]
async fn a_buffer_survives_refusals() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let layer = RateLimitLayer::new(Quota::per_second(n(1))).max_wait(ms(500));
    let svc = Buffer::new(layer.layer(inner), 16);

    let tasks: Vec<_> = (0..3)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert!(results[0].is_ok());
    for refused in &results[1..] {
        let err = refused.as_ref().unwrap_err();
        assert!(err.is::<MaxWaitExceeded>(), "{err}");
    }
    tokio::time::sleep(secs(1)).await;
    svc.clone().oneshot(req("after")).await.unwrap();
    assert_eq!(arrivals.names(), ["0", "after"]);
    assert_eq!(arrivals.times(), [secs(0), secs(1)]);
}

#[derive(Clone)]
struct RetryServerErrors(usize);

impl Policy<Request<String>, Response<()>, calm_ratelimit::BoxError> for RetryServerErrors {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut Request<String>,
        result: &mut Result<Response<()>, calm_ratelimit::BoxError>,
    ) -> Option<Self::Future> {
        match result {
            Ok(r) if r.status().is_server_error() && self.0 > 0 => {
                self.0 -= 1;
                Some(ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Request<String>) -> Option<Request<String>> {
        Some(req.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_outside_pays_for_every_attempt() {
    let (inner, handle) = mock::pair();
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let arrivals = serve(handle, move |_| {
        let k = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut response = Response::new(());
        if k < 2 {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        response
    });
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryServerErrors(5)))
        .layer(RateLimitLayer::new(Quota::per_second(n(1))))
        .service(inner);

    let response = svc.oneshot(req("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(arrivals.times(), [secs(0), secs(1), secs(2)]);
}

#[test]
fn everything_is_send_sync_and_clone_where_the_inner_is() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    type Svc = calm_ratelimit::RateLimit<mock::Mock<Request<String>, Response<()>>>;
    send_sync_clone::<Svc>();
    send_sync_clone::<RateLimitLayer>();
    send_sync_clone::<calm_ratelimit::Limiter>();
    send::<<Svc as tower::Service<Request<String>>>::Future>();
    send::<calm_ratelimit::Acquire>();
}
