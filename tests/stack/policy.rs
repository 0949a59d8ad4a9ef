//! Retry configuration through the facade: per-request override, `no_retries`, safety.

use calm::ratelimit::error::MaxWaitExceeded;
use calm::retry::error::RetryError;
use calm::retry::StopReason;
use calm::{Backoff, RetryPolicy};
use tokio::time::Instant;

use crate::support::{builder, ms, per_second, secs, Answer, Backend};

#[tokio::test(start_paused = true)]
async fn a_per_request_policy_replaces_the_clients() {
    let backend = Backend::new([Answer::status(503)]);
    let client = builder().build_with(backend.clone()).unwrap();

    let once = client
        .get("/report")
        .retry(RetryPolicy::default().max_retries(0))
        .send()
        .await
        .unwrap();
    assert_eq!(once.status(), 503);
    assert_eq!(once.retry_info().unwrap().attempts(), 1);
    assert_eq!(backend.count(), 1);

    let twice = client
        .get("/report")
        .retry(
            RetryPolicy::default()
                .max_retries(1)
                .backoff(Backoff::none()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(twice.retry_info().unwrap().attempts(), 2);
    assert_eq!(backend.count(), 3);

    // The client's own policy (3 retries) still applies to the next request.
    let default = client.get("/report").send().await.unwrap();
    let info = default.retry_info().unwrap();
    assert_eq!(info.attempts(), 4);
    assert_eq!(info.stop_reason(), &StopReason::AttemptsExhausted);
    assert_eq!(backend.count(), 7);
    assert_eq!(client.stats().requests, 3);
    assert_eq!(client.stats().attempts, 7);
}

#[tokio::test(start_paused = true)]
async fn no_retries_sends_every_request_once() {
    let backend = Backend::new([Answer::status(503), Answer::fail(), Answer::ok()]);
    let client = builder().no_retries().build_with(backend.clone()).unwrap();

    let unavailable = client.get("/x").send().await.unwrap();
    assert_eq!(unavailable.status(), 503);
    assert_eq!(unavailable.retry_info().unwrap().attempts(), 1);
    let error = client.get("/x").send().await.unwrap_err();
    let error = error.find_source::<RetryError>().expect("a RetryError");
    assert_eq!(error.info().unwrap().attempts(), 1);
    assert!(error.find_source::<crate::support::Broken>().is_some());

    assert_eq!(backend.count(), 2);
    assert_eq!(client.stats().retries(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_post_is_retried_only_when_that_is_safe() {
    let backend = Backend::new([Answer::status(503)]);
    let client = builder()
        .retry(
            RetryPolicy::default()
                .max_retries(1)
                .backoff(Backoff::none()),
        )
        .build_with(backend.clone())
        .unwrap();

    let post = client.post("/orders").body("{}").send().await.unwrap();
    assert_eq!(post.retry_info().unwrap().attempts(), 1);
    assert_eq!(
        post.retry_info().unwrap().stop_reason(),
        &StopReason::NotRetryable
    );
    assert_eq!(backend.count(), 1);

    let keyed = client
        .post("/orders")
        .header("idempotency-key", "k-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.retry_info().unwrap().attempts(), 2);
    let arrivals = backend.arrivals();
    assert_eq!(arrivals.len(), 3);
    assert!(arrivals[1..]
        .iter()
        .all(|a| a.headers["idempotency-key"] == "k-1" && a.body == "{}"));
}

#[tokio::test(start_paused = true)]
async fn a_per_request_policy_does_not_retry_a_max_wait_refusal() {
    let backend = Backend::default();
    let client = builder()
        .rate_limit(per_second(1))
        .max_wait(ms(500))
        .build_with(backend.clone())
        .unwrap();
    client.get("/x").send().await.unwrap();

    let started = Instant::now();
    let result = client
        .get("/x")
        .retry(RetryPolicy::default().max_retries(3))
        .send()
        .await;
    let error = result.expect_err("the place is 1 s away, more than max_wait");
    let error = error.find_source::<RetryError>().expect("a RetryError");
    assert!(error.find_source::<MaxWaitExceeded>().is_some());
    assert_eq!(error.info().unwrap().retries().len(), 0);
    assert_eq!(started.elapsed(), secs(0));
    assert_eq!(backend.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_per_request_policy_keeps_the_clients_deadline() {
    let backend = Backend::new([Answer::status(503)]);
    let client = builder()
        .timeout(secs(5))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let response = client
        .get("/x")
        .retry(RetryPolicy::default().backoff(Backoff::constant(secs(10))))
        .send()
        .await
        .expect("a retry ending past the deadline is not begun: the 503 comes back");
    assert_eq!(response.status(), 503);
    assert!(matches!(
        response.retry_info().unwrap().stop_reason(),
        StopReason::DeadlineExceeded { .. }
    ));
    assert_eq!(started.elapsed(), secs(0));
    assert_eq!(backend.count(), 1);
}
