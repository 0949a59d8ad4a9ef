//! Unit tests of the retry layer over a tower-test mock, on paused tokio time.
#![allow(missing_docs)]

mod sent;
mod support;

use std::{
    io,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use calm_retry::{
    error::{ConfigErrorKind, RetryErrorKind},
    Backoff, Jitter, ReplayBody, Retry, RetryBudget, RetryInfo, RetryLayer, RetryPolicy,
    RetryReason, StopReason, TryCloneBody, WaitSource,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{channel::Channel, BodyExt, Full};
use support::*;
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready_ok};
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_test::mock;

fn urllib3_policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(3)
        .backoff(Backoff::urllib3(1.0))
        .retry_on_status([
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ])
}

fn constant(secs: u64) -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(Duration::from_secs(secs)))
}

fn refused() -> BoxError {
    Box::new(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

#[tokio::test(start_paused = true)]
async fn urllib3_port_schedule_0_0_2_6() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(urllib3_policy());
    let call = send(&svc, request(Method::GET));
    let seen = serve(&mut handle, t0, (0..4).map(|_| status(503).into())).await;
    let res = call.await.unwrap().unwrap();

    assert_eq!(at(&seen), [0, 0, 2, 6].map(secs));
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let info = info(&res);
    assert_eq!(info.attempts(), 4);
    assert_eq!(info.stop_reason(), &StopReason::AttemptsExhausted);
    let waits: Vec<_> = info.retries().iter().map(|r| r.wait()).collect();
    assert_eq!(waits, [0, 2, 4].map(secs));
    assert!(info.retries().iter().all(|r| r.reason()
        == RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE)
        && r.wait_source() == WaitSource::Backoff));
    assert_eq!(t0.elapsed(), secs(6));
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn first_try_success_carries_info() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(RetryPolicy::default());
    let call = send(&svc, request(Method::GET));
    serve(&mut handle, t0, [status(200).into()]).await;
    let res = call.await.unwrap().unwrap();
    let info = info(&res);
    assert_eq!(info.attempts(), 1);
    assert!(info.retries().is_empty());
    assert_eq!(info.stop_reason(), &StopReason::Succeeded);
    assert_eq!(info.retry_after(), None);
}

#[tokio::test(start_paused = true)]
async fn final_status_outside_the_set_is_not_retried() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(RetryPolicy::default());
    let call = send(&svc, request(Method::GET));
    serve(&mut handle, t0, [status(500).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(info(&res).stop_reason(), &StopReason::Succeeded);
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_replaces_the_backoff() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::GET));
    let seen = serve(
        &mut handle,
        t0,
        [
            with_header(status(429), "retry-after", "7").into(),
            status(200).into(),
        ],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(at(&seen), [secs(0), secs(7)]);
    assert_eq!(res.status(), 200);
    let record = info(&res).retries()[0];
    assert_eq!(record.wait(), secs(7));
    assert_eq!(record.wait_source(), WaitSource::RetryAfter);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_measured_from_the_date_header() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::GET));
    let server_now = SystemTime::UNIX_EPOCH + secs(1_700_000_000);
    let unavailable = with_header(
        with_header(
            status(503),
            "retry-after",
            &httpdate::fmt_http_date(server_now + secs(5)),
        ),
        "date",
        &httpdate::fmt_http_date(server_now),
    );
    let seen = serve(&mut handle, t0, [unavailable.into(), status(200).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(at(&seen), [secs(0), secs(5)]);
    assert_eq!(info(&res).retries()[0].wait(), secs(5));
}

fn fixed_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + secs(1_700_000_000)
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_without_date_uses_the_wall_clock() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1).wall_clock(fixed_clock));
    let call = send(&svc, request(Method::GET));
    let date = httpdate::fmt_http_date(fixed_clock() + secs(3));
    let seen = serve(
        &mut handle,
        t0,
        [
            with_header(status(429), "retry-after", &date).into(),
            status(200).into(),
        ],
    )
    .await;
    call.await.unwrap().unwrap();
    assert_eq!(at(&seen), [secs(0), secs(3)]);
}

#[tokio::test(start_paused = true)]
async fn malformed_retry_after_falls_back_to_the_backoff() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::GET));
    let seen = serve(
        &mut handle,
        t0,
        [
            with_header(status(503), "retry-after", "-5").into(),
            with_header(status(503), "retry-after", "soon").into(),
            status(200).into(),
        ],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(at(&seen), [secs(0), secs(1), secs(2)]);
    assert!(info(&res)
        .retries()
        .iter()
        .all(|r| r.wait_source() == WaitSource::Backoff));
}

#[tokio::test(start_paused = true)]
async fn retry_after_above_the_cap_is_not_slept_on() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(RetryPolicy::default().max_retry_after(secs(60)));
    let call = send(&svc, request(Method::GET));
    serve(
        &mut handle,
        t0,
        [with_header(status(429), "retry-after", "3600").into()],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO, "no sleep");
    assert_eq!(res.status(), 429);
    let info = info(&res);
    assert_eq!(info.attempts(), 1);
    assert_eq!(
        info.stop_reason(),
        &StopReason::RetryAfterTooLong {
            retry_at: t0 + secs(3600)
        }
    );
    assert_eq!(info.retry_after(), Some(t0 + secs(3600)));
    assert_eq!(info.stop_reason().retry_at(), Some(t0 + secs(3600)));
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_deadline_is_not_slept_on() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(RetryPolicy::default().deadline(secs(5)));
    let call = send(&svc, request(Method::GET));
    serve(
        &mut handle,
        t0,
        [with_header(status(503), "retry-after", "10").into()],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO, "no sleep");
    let info = info(&res);
    assert_eq!(
        info.stop_reason(),
        &StopReason::DeadlineExceeded {
            retry_at: t0 + secs(10)
        }
    );
    assert_eq!(info.retry_after(), Some(t0 + secs(10)));
}

#[tokio::test(start_paused = true)]
async fn backoff_past_the_deadline_is_not_slept_on() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(2).deadline(secs(3)));
    let call = send(&svc, request(Method::GET));
    let seen = serve(&mut handle, t0, [status(503).into(), status(503).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(at(&seen), [secs(0), secs(2)]);
    assert_eq!(
        t0.elapsed(),
        secs(2),
        "returned at once after the 2nd attempt"
    );
    assert_eq!(
        info(&res).stop_reason(),
        &StopReason::DeadlineExceeded {
            retry_at: t0 + secs(4)
        }
    );
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn post_on_503_is_not_retried() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::POST));
    serve(&mut handle, t0, [status(503).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(info(&res).attempts(), 1);
    assert_eq!(info(&res).stop_reason(), &StopReason::NotRetryable);
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn patch_on_503_is_not_retried() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::PATCH));
    serve(&mut handle, t0, [status(503).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(info(&res).stop_reason(), &StopReason::NotRetryable);
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn post_on_429_is_retried() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::POST));
    let seen = serve(&mut handle, t0, [status(429).into(), status(201).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|s| s.method == Method::POST && s.body == "payload"));
    assert_eq!(
        info(&res).retries()[0].reason(),
        RetryReason::Status(StatusCode::TOO_MANY_REQUESTS)
    );
}

#[tokio::test(start_paused = true)]
async fn post_on_connect_failure_is_retried() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::POST));
    let seen = serve(
        &mut handle,
        t0,
        [Reply::Error(refused()), status(201).into()],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(at(&seen), [secs(0), secs(1)]);
    assert_eq!(info(&res).retries()[0].reason(), RetryReason::Connect);
}

#[tokio::test(start_paused = true)]
async fn post_on_other_transport_error_is_not_retried_and_keeps_the_error() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::POST));
    serve(
        &mut handle,
        t0,
        [Reply::Error(Box::new(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )))],
    )
    .await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), RetryErrorKind::Service);
    let info = err.info().unwrap();
    assert_eq!(info.attempts(), 1);
    assert_eq!(info.stop_reason(), &StopReason::NotRetryable);
    assert_eq!(
        err.find_source::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn custom_connect_predicate() {
    fn never(_: &(dyn std::error::Error + 'static)) -> bool {
        false
    }
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1).connect_error(never));
    let call = send(&svc, request(Method::POST));
    serve(&mut handle, t0, [Reply::Error(refused())]).await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.info().unwrap().stop_reason(), &StopReason::NotRetryable);
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn post_with_idempotency_key_on_503_is_retried() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let mut req = request(Method::POST);
    req.headers_mut()
        .insert("idempotency-key", "8e03978e-40d5".parse().unwrap());
    let call = send(&svc, req);
    let seen = serve(&mut handle, t0, [status(503).into(), status(201).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|s| s.headers.get("idempotency-key").unwrap() == "8e03978e-40d5"));
}

#[tokio::test(start_paused = true)]
async fn idempotency_key_only_makes_post_and_patch_retryable() {
    // DESIGN: the key vouches for POST and PATCH only; another non-idempotent method
    // (WebDAV LOCK, CONNECT) carrying one is still not retried on a 503.
    for method in [Method::from_bytes(b"LOCK").unwrap(), Method::CONNECT] {
        let t0 = Instant::now();
        let (svc, mut handle) = service(constant(1));
        let mut req = request(method.clone());
        req.headers_mut()
            .insert("idempotency-key", "8e03978e-40d5".parse().unwrap());
        let call = send(&svc, req);
        serve(&mut handle, t0, [status(503).into()]).await;
        // (a retry would wait for a second answer that never comes)
        let res = tokio::time::timeout(secs(60), call)
            .await
            .expect("answered without a retry")
            .unwrap()
            .unwrap();
        assert_eq!(info(&res).attempts(), 1, "{method}");
        assert_eq!(
            info(&res).stop_reason(),
            &StopReason::NotRetryable,
            "{method}"
        );
        assert_no_more_requests(&mut handle);
    }
    // PATCH with the key is.
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let mut req = request(Method::PATCH);
    req.headers_mut()
        .insert("idempotency-key", "8e03978e-40d5".parse().unwrap());
    let call = send(&svc, req);
    serve(&mut handle, t0, [status(503).into(), status(200).into()]).await;
    assert_eq!(info(&call.await.unwrap().unwrap()).attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_that_of_the_last_response() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::GET));
    serve(
        &mut handle,
        t0,
        [
            with_header(status(429), "retry-after", "2").into(),
            status(200).into(),
        ],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    let info = info(&res);
    assert_eq!(info.attempts(), 2);
    assert_eq!(info.retries()[0].wait_source(), WaitSource::RetryAfter);
    // the 200 named no Retry-After: the 429's must not be reported as the last response's
    assert_eq!(info.retry_after(), None);
}

#[tokio::test(start_paused = true)]
async fn retry_non_idempotent_opt_in() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1).retry_non_idempotent(true));
    let call = send(&svc, request(Method::POST));
    serve(&mut handle, t0, [status(503).into(), status(200).into()]).await;
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn get_transport_errors_are_retried_until_exhausted() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1).max_retries(2));
    let call = send(&svc, request(Method::GET));
    let seen = serve(
        &mut handle,
        t0,
        (0..3).map(|_| Reply::Error(Box::new(io::Error::from(io::ErrorKind::TimedOut)))),
    )
    .await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(at(&seen), [0, 1, 2].map(secs));
    let info = err.info().unwrap();
    assert_eq!(info.attempts(), 3);
    assert_eq!(info.stop_reason(), &StopReason::AttemptsExhausted);
    assert!(info
        .retries()
        .iter()
        .all(|r| r.reason() == RetryReason::Error));
    assert!(err.to_string().contains("3 attempts"), "{err}");
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn retryable_error_predicate_stops_retries() {
    fn only_timeouts(err: &(dyn std::error::Error + 'static)) -> bool {
        err.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
    }
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1).retryable_error(only_timeouts));
    let call = send(&svc, request(Method::GET));
    serve(
        &mut handle,
        t0,
        [
            Reply::Error(Box::new(io::Error::from(io::ErrorKind::TimedOut))),
            Reply::Error(Box::new(io::Error::other("no"))),
        ],
    )
    .await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.info().unwrap().attempts(), 2);
    assert_eq!(err.info().unwrap().stop_reason(), &StopReason::NotRetryable);
}

#[tokio::test(start_paused = true)]
async fn per_request_policy_replaces_the_layers() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1).max_retries(5));
    let mut req = request(Method::GET);
    req.extensions_mut()
        .insert(RetryPolicy::default().max_retries(0));
    let call = send(&svc, req);
    serve(&mut handle, t0, [status(503).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(info(&res).attempts(), 1);
    assert_eq!(info(&res).stop_reason(), &StopReason::AttemptsExhausted);
    assert_no_more_requests(&mut handle);

    // and another status set for one request
    let mut req = request(Method::GET);
    req.extensions_mut().insert(
        constant(1)
            .max_retries(1)
            .retry_on_status([StatusCode::INTERNAL_SERVER_ERROR]),
    );
    let call = send(&svc, req);
    let seen = serve(&mut handle, t0, [status(500).into(), status(500).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(info(&res).stop_reason(), &StopReason::AttemptsExhausted);
}

#[tokio::test(start_paused = true)]
async fn invalid_per_request_policy_is_an_error_and_sends_nothing() {
    let (mut svc, mut handle) = service(RetryPolicy::default());
    let mut req = request(Method::GET);
    req.extensions_mut()
        .insert(RetryPolicy::default().backoff(Backoff::urllib3(f64::NAN)));
    let err = svc.ready().await.unwrap().call(req).await.unwrap_err();
    assert_eq!(err.kind(), RetryErrorKind::InvalidPolicy);
    assert!(err.info().is_none());
    assert_eq!(
        err.find_source::<calm_retry::error::ConfigError>()
            .unwrap()
            .kind(),
        ConfigErrorKind::BackoffFactor
    );
    assert_no_more_requests(&mut handle);
}

#[test]
fn invalid_layer_policy_is_an_error_at_build() {
    let err = RetryLayer::new(RetryPolicy::default().backoff(
        Backoff::exponential(Duration::from_millis(10)).jitter(Jitter::Proportional(2.0)),
    ))
    .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::Jitter);
    assert!(Retry::new((), RetryPolicy::default().backoff(Backoff::urllib3(-1.0))).is_err());
}

#[tokio::test(start_paused = true)]
async fn waits_for_readiness_before_every_attempt() {
    let (mut svc, mut handle) =
        mock::spawn_layer::<Req, Res, _>(RetryLayer::new(constant(1)).unwrap());

    handle.allow(0);
    assert_pending!(svc.poll_ready());
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    let mut fut = tokio_test::task::spawn(svc.call(request(Method::GET)));

    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(status(503));
    assert_pending!(fut.poll()); // backing off for 1 s
    tokio::time::advance(secs(2)).await;
    assert_pending!(fut.poll()); // the inner service is not ready: nothing sent
    assert!(handle.poll_request().is_pending());

    handle.allow(1);
    assert!(fut.is_woken());
    assert_pending!(fut.poll());
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(status(503));
    assert_pending!(fut.poll());
    tokio::time::advance(secs(2)).await;
    assert_pending!(fut.poll()); // again: rem is 0 after the 2nd call
    assert!(handle.poll_request().is_pending());

    handle.allow(1);
    assert_pending!(fut.poll());
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(status(200));
    let res = assert_ready_ok!(fut.poll());
    assert_eq!(info(&res).attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn poll_ready_failure_during_a_retry_ends_the_request() {
    let (mut svc, mut handle) =
        mock::spawn_layer::<Req, Res, _>(RetryLayer::new(constant(1)).unwrap());
    assert_ready_ok!(svc.poll_ready());
    let mut fut = tokio_test::task::spawn(svc.call(request(Method::GET)));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(status(503));
    assert_pending!(fut.poll());
    handle.send_error(io::Error::other("broken"));
    tokio::time::advance(secs(2)).await;
    let err = match fut.poll() {
        std::task::Poll::Ready(Err(err)) => err,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(err.info().unwrap().stop_reason(), &StopReason::NotReady);
    assert_eq!(err.info().unwrap().attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_bounds_retries_across_clones() {
    // Default budget: 10 retries/s floor over 10 s (100) + 20 % of the requests.
    const REQUESTS: usize = 200;
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Req| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>(status(503)) }
        })
    };
    let layer = RetryLayer::new(RetryPolicy::default().backoff(Backoff::none())).unwrap();
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        // half the requests through clones of one service, half through services made by
        // clones of the layer: all share the layer's budget
        let svc = if i % 2 == 0 {
            layer.layer(backend.clone())
        } else {
            layer.clone().layer(backend.clone())
        };
        tasks.push(tokio::spawn(svc.clone().oneshot(request(Method::GET))));
    }
    let mut exhausted = 0;
    for task in tasks {
        let res = task.await.unwrap().unwrap();
        if info(&res).stop_reason() == &StopReason::BudgetExhausted {
            exhausted += 1;
        }
    }
    let retries = calls.load(Ordering::SeqCst) - REQUESTS;
    assert!(retries <= 100 + REQUESTS / 5, "{retries} retries");
    assert!(
        retries >= 100,
        "the floor allows at least 100 retries, got {retries}"
    );
    assert!(exhausted > 0);
    // without the budget: every request would have made 3 retries
    assert!(retries < 3 * REQUESTS);
}

#[tokio::test(start_paused = true)]
async fn no_budget_and_own_budget() {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Req| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>(status(503)) }
        })
    };
    let svc = RetryLayer::new(RetryPolicy::default().backoff(Backoff::none()).no_budget())
        .unwrap()
        .layer(backend.clone());
    for _ in 0..50 {
        svc.clone().oneshot(request(Method::GET)).await.unwrap();
    }
    assert_eq!(calls.swap(0, Ordering::SeqCst), 200);

    // a budget with no floor and 50 %: 2 requests pay for one retry
    let budget = RetryBudget::new(secs(10), 0, 0.5).unwrap();
    let layer = RetryLayer::new(
        RetryPolicy::default()
            .backoff(Backoff::none())
            .budget(budget.clone()),
    )
    .unwrap();
    assert!(layer.budget().unwrap().ptr_eq(&budget));
    let svc = layer.layer(backend);
    for _ in 0..50 {
        svc.clone().oneshot(request(Method::GET)).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 50 + 25);
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_is_deterministic() {
    let backoff = Backoff::exponential(Duration::from_millis(100))
        .jitter(Jitter::Full)
        .seed(99);
    let t0 = Instant::now();
    let (svc, mut handle) = service(RetryPolicy::default().backoff(backoff));
    let call = send(&svc, request(Method::GET));
    serve(&mut handle, t0, (0..4).map(|_| status(502).into())).await;
    let res = call.await.unwrap().unwrap();
    let waits: Vec<_> = info(&res).retries().iter().map(|r| r.wait()).collect();
    assert_eq!(waits, backoff.delays().take(3).collect::<Vec<_>>());
    assert_eq!(info(&res).total_wait(), waits.iter().sum());
}

#[tokio::test(start_paused = true)]
async fn retried_response_body_is_drained_while_waiting_then_dropped() {
    type Body = Channel<Bytes>;
    let (tx_send, mut tx_recv) = tokio::sync::mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = tower::service_fn(move |_req: Req| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let (tx, body) = Body::new(1);
        let mut res = Response::new(body);
        if n == 0 {
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        tx_send.send(tx).unwrap();
        async move { Ok::<_, BoxError>(res) }
    });
    let svc = RetryLayer::new(constant(1)).unwrap().layer(backend);
    let t0 = Instant::now();
    let call = tokio::spawn(svc.oneshot(request(Method::GET)));

    let mut first = tx_recv.recv().await.unwrap();
    // capacity 1: the second send only completes once the layer has read the first frame
    for _ in 0..3 {
        first.send_data(Bytes::from_static(b"oops")).await.unwrap();
    }
    assert_eq!(t0.elapsed(), Duration::ZERO, "drained while waiting");
    // once the retry is sent, the old body is gone
    let _second = tx_recv.recv().await.unwrap();
    assert_eq!(t0.elapsed(), secs(1));
    assert!(first.send_data(Bytes::from_static(b"late")).await.is_err());
    drop(_second);
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn replay_body_over_the_cap_is_sent_once_and_not_retried() {
    type ReplayReq = Request<ReplayBody<Full<Bytes>>>;
    let (mock, mut handle) = mock::pair::<ReplayReq, Res>();
    let svc = RetryLayer::new(constant(1).max_replay_bytes(8))
        .unwrap()
        .layer(mock);
    let body = ReplayBody::new(Full::new(Bytes::from_static(b"more than eight bytes")));
    let call = tokio::spawn(svc.oneshot(Request::put("/").body(body).unwrap()));

    let (req, reply) = handle.next_request().await.unwrap();
    let got = req.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        got, "more than eight bytes",
        "the attempt itself is complete"
    );
    reply.send_response(status(503));
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(info(&res).attempts(), 1);
    assert_eq!(info(&res).stop_reason(), &StopReason::BodyNotReplayable);
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn streaming_body_is_replayed_identically() {
    type ReplayReq = Request<ReplayBody<Channel<Bytes>>>;
    let (mock, mut handle) = mock::pair::<ReplayReq, Res>();
    let svc = tower::ServiceBuilder::new()
        .layer(calm_retry::ReplayBodyLayer::new())
        .layer(RetryLayer::new(constant(1)).unwrap())
        .service(mock);
    let (mut tx, body) = Channel::<Bytes>::new(4);
    let call = tokio::spawn(svc.oneshot(Request::put("/upload").body(body).unwrap()));
    tokio::spawn(async move {
        for chunk in ["alpha ", "beta ", "gamma"] {
            tx.send_data(Bytes::from(chunk)).await.unwrap();
        }
    });

    let (req, reply) = handle.next_request().await.unwrap();
    let first = req.into_body().collect().await.unwrap().to_bytes();
    reply.send_response(status(503));
    let (req, reply) = handle.next_request().await.unwrap();
    let second = req.into_body().collect().await.unwrap().to_bytes();
    reply.send_response(status(200));

    assert_eq!(first, "alpha beta gamma");
    assert_eq!(first, second);
    let res = call.await.unwrap().unwrap();
    assert_eq!(info(&res).attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn unclonable_body_is_not_retried() {
    /// A body type that can never be copied.
    #[derive(Debug, Default)]
    struct Once;
    impl TryCloneBody for Once {
        fn try_clone_body(&self) -> Option<Self> {
            None
        }
    }
    let backend = tower::service_fn(|_req: Request<Once>| async { Ok::<_, BoxError>(status(503)) });
    let svc = RetryLayer::new(constant(1)).unwrap().layer(backend);
    let res = svc.oneshot(Request::new(Once)).await.unwrap();
    assert_eq!(info(&res).stop_reason(), &StopReason::BodyNotReplayable);
}

#[tokio::test]
async fn types_are_clone_send_sync() {
    fn clone_send_sync<T: Clone + Send + Sync + std::fmt::Debug>() {}
    fn send<T: Send>(_: &T) {}
    clone_send_sync::<RetryLayer>();
    clone_send_sync::<RetryPolicy>();
    clone_send_sync::<RetryInfo>();
    clone_send_sync::<Retry<mock::Mock<Req, Res>>>();
    clone_send_sync::<calm_retry::ReplayBodyLayer>();
    let (mut svc, _handle) = service(RetryPolicy::default());
    let fut = svc.ready().await.unwrap().call(request(Method::GET));
    send(&fut);
    let _ = format!("{fut:?}");
}

#[tokio::test(start_paused = true)]
async fn call_owned_retries_like_call() {
    let t0 = Instant::now();
    let (mut svc, mut handle) = service(urllib3_policy());
    svc.ready().await.unwrap();
    let call = tokio::spawn(svc.call_owned(request(Method::GET)));
    let replies = [status(503).into(), status(503).into(), status(200).into()];
    let seen = serve(&mut handle, t0, replies).await;
    let res = call.await.unwrap().unwrap();

    assert_eq!(at(&seen), [0, 0, 2].map(secs));
    assert!(seen.iter().all(|s| s.body == "payload"));
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(info(&res).attempts(), 3);
    assert_eq!(info(&res).stop_reason(), &StopReason::Succeeded);
    assert_no_more_requests(&mut handle);
}
