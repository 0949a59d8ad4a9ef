//! Sent means sent (outcomes of redirect hops), and a retry that cannot start before the
//! deadline is not started.

use std::time::Duration;

use calm_retry::follow_up::{FollowUp, FollowUpError};
use calm_retry::{Deadline, RetryLayer, RetryReason, StopReason};
use http::{Method, StatusCode};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready_ok};
use tower_test::mock;

use super::{constant, refused};
use crate::support::*;

fn from_hop(mut res: Res) -> Res {
    res.extensions_mut().insert(FollowUp::new(1));
    res
}

#[tokio::test(start_paused = true)]
async fn post_whose_redirect_hop_answers_429_is_not_sent_again() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::POST));
    let seen = serve(&mut handle, t0, [from_hop(status(429)).into()]).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(seen.len(), 1);
    assert_eq!(info(&res).stop_reason(), &StopReason::NotRetryable);
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn post_whose_redirect_hop_is_refused_is_not_sent_again() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::POST));
    let hop_error = Box::new(FollowUpError::new(1, refused()));
    let seen = serve(&mut handle, t0, [Reply::Error(hop_error)]).await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(seen.len(), 1);
    assert_eq!(err.info().unwrap().stop_reason(), &StopReason::NotRetryable);
    assert!(err.find_source::<FollowUpError>().is_some());
    assert!(
        err.find_source::<std::io::Error>().is_some(),
        "cause chain kept"
    );
    assert_no_more_requests(&mut handle);
}

#[tokio::test(start_paused = true)]
async fn get_whose_redirect_hop_fails_is_still_retried_as_idempotent() {
    let t0 = Instant::now();
    let (svc, mut handle) = service(constant(1));
    let call = send(&svc, request(Method::GET));
    let hop_error = Box::new(FollowUpError::new(2, refused()));
    let seen = serve(
        &mut handle,
        t0,
        [
            Reply::Error(hop_error),
            from_hop(status(429)).into(),
            status(200).into(),
        ],
    )
    .await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(seen.len(), 3);
    let reasons: Vec<_> = info(&res).retries().iter().map(|r| r.reason()).collect();
    assert_eq!(
        reasons,
        [
            RetryReason::Error,
            RetryReason::Status(StatusCode::TOO_MANY_REQUESTS)
        ]
    );
}

type Fut = tokio_test::task::Spawn<<Svc as tower::Service<Req>>::Future>;

/// Sends `req` through a retry layer with `policy`, answers the first attempt with `first`,
/// and leaves the mock not ready: the retry then waits for it.
async fn first_attempt_then_not_ready(
    policy: calm_retry::RetryPolicy,
    req: Req,
    first: Reply,
) -> (Fut, Handle) {
    let (mut svc, mut handle) = mock::spawn_layer::<Req, Res, _>(RetryLayer::new(policy).unwrap());
    assert_ready_ok!(svc.poll_ready());
    let mut fut = tokio_test::task::spawn(svc.call(req));
    let (_, reply) = handle.next_request().await.unwrap();
    handle.allow(0);
    match first {
        Reply::Response(res) => reply.send_response(res),
        Reply::Error(err) => reply.send_error(err),
    }
    assert_pending!(fut.poll());
    (fut, handle)
}

/// The inner service is not ready again before the deadline: the retry is not sent, and the
/// 503 comes back whole with its `RetryInfo`.
#[tokio::test(start_paused = true)]
async fn retry_not_ready_before_the_deadline_returns_the_last_response() {
    let policy = constant(1).deadline(Duration::from_secs(5));
    let (mut fut, mut handle) =
        first_attempt_then_not_ready(policy, request(Method::GET), status(503).into()).await;
    // backing off for 1 s
    tokio::time::advance(secs(3)).await;
    assert_pending!(fut.poll()); // due, but the inner service is not ready
    tokio::time::advance(secs(3)).await;
    let res = assert_ready_ok!(fut.poll());
    assert_eq!(res.status(), 503);
    assert_eq!(res.body(), "reply", "the body is returned, not drained");
    let info = info(&res);
    assert_eq!(info.attempts(), 1);
    assert!(info.retries().is_empty(), "no retry was made");
    assert!(matches!(
        info.stop_reason(),
        StopReason::DeadlineExceeded { .. }
    ));
    handle.allow(1);
    assert_no_more_requests(&mut handle);
}

/// The inner service becomes ready only after the deadline: the retry is not sent then.
#[tokio::test(start_paused = true)]
async fn retry_ready_only_after_the_deadline_is_not_sent() {
    let t0 = Instant::now();
    let mut req = request(Method::GET);
    req.extensions_mut().insert(Deadline::at(t0 + secs(4)));
    let (mut fut, mut handle) =
        first_attempt_then_not_ready(constant(1), req, status(503).into()).await;
    tokio::time::advance(Duration::from_millis(4500)).await;
    handle.allow(1); // ready now, but past the deadline
    let res = assert_ready_ok!(fut.poll());
    assert_eq!(res.status(), 503);
    assert!(matches!(
        info(&res).stop_reason(),
        StopReason::DeadlineExceeded { .. }
    ));
    assert_no_more_requests(&mut handle);
}

/// A transport error being retried comes back as the error when the retry cannot start.
#[tokio::test(start_paused = true)]
async fn retried_error_comes_back_when_the_retry_cannot_start() {
    let policy = constant(1).deadline(Duration::from_secs(2));
    let (mut fut, _handle) =
        first_attempt_then_not_ready(policy, request(Method::GET), Reply::Error(refused())).await;
    tokio::time::advance(secs(3)).await;
    let err = match fut.poll() {
        std::task::Poll::Ready(Err(err)) => err,
        other => panic!("expected the error, got {other:?}"),
    };
    assert!(err.find_source::<std::io::Error>().is_some());
    assert!(matches!(
        err.info().unwrap().stop_reason(),
        StopReason::DeadlineExceeded { .. }
    ));
}

/// Ready in time: the retry goes out as usual.
#[tokio::test(start_paused = true)]
async fn retry_ready_before_the_deadline_is_sent() {
    let policy = constant(1).deadline(Duration::from_secs(5));
    let (mut fut, mut handle) =
        first_attempt_then_not_ready(policy, request(Method::GET), status(503).into()).await;
    tokio::time::advance(secs(2)).await;
    assert_pending!(fut.poll());
    handle.allow(1);
    assert_pending!(fut.poll());
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(status(200));
    let res = assert_ready_ok!(fut.poll());
    assert_eq!(info(&res).attempts(), 2);
    assert_eq!(info(&res).stop_reason(), &StopReason::Succeeded);
}
