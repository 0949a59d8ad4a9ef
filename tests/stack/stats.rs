//! `Client::stats`: requests, attempts, retries by reason, 429s, errors, rate-limit waits.

use calm::retry::RetryReason;
use calm::{Body, RetryPolicy};
use http::{Request, StatusCode};
use tower::ServiceExt;

use crate::support::{builder, per_second, secs, Answer, Backend};

#[tokio::test(start_paused = true)]
async fn stats_count_requests_attempts_retries_by_reason_and_429s() {
    let backend = Backend::new([
        Answer::status(503),
        Answer::status(503),
        Answer::ok(),
        Answer::status(429),
        Answer::ok(),
        Answer::status(502),
        Answer::ok(),
    ]);
    let client = builder().build_with(backend.clone()).unwrap();
    let clone = client.clone();

    assert_eq!(client.stats(), calm::Stats::default());
    for _ in 0..3 {
        let response = clone.get("/items").send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    // Every clone reads the same counters.
    let stats = client.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.attempts, 7);
    assert_eq!(backend.count(), 7);
    assert_eq!(
        stats.retries_by_reason,
        [
            (RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE), 2),
            (RetryReason::Status(StatusCode::TOO_MANY_REQUESTS), 1),
            (RetryReason::Status(StatusCode::BAD_GATEWAY), 1),
        ]
    );
    assert_eq!(stats.retries(), 4);
    assert_eq!(stats.responses_429, 1);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.rate_limit_waits, 0);
    assert_eq!(clone.stats(), stats);
}

#[tokio::test(start_paused = true)]
async fn stats_count_errors_and_retries_after_errors() {
    let backend = Backend::new([Answer::fail(), Answer::ok(), Answer::fail()]);
    let client = builder().build_with(backend.clone()).unwrap();

    let recovered = client.get("/a").send().await.unwrap();
    assert_eq!(recovered.status(), 200);
    let failed = client
        .get("/b")
        .retry(RetryPolicy::default().max_retries(0))
        .send()
        .await;
    assert!(failed.is_err());

    let stats = client.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.attempts, 3);
    assert_eq!(stats.retries_by_reason, [(RetryReason::Error, 1)]);
    assert_eq!(stats.errors, 1);
    assert_eq!(stats.responses_429, 0);
}

#[tokio::test(start_paused = true)]
async fn stats_report_the_rate_limiters_waits() {
    let backend = Backend::default();
    let paced = builder()
        .rate_limit(per_second(1))
        .build_with(backend.clone())
        .unwrap();
    for _ in 0..3 {
        paced.get("/x").send().await.unwrap();
    }
    let stats = paced.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.rate_limit_waits, 2);
    assert_eq!(stats.rate_limit_wait, secs(2));

    let unpaced = builder().build_with(backend).unwrap();
    unpaced.get("/x").send().await.unwrap();
    assert!(unpaced.limiter().is_none());
    assert!(unpaced.limiter_snapshot().is_none());
    assert_eq!(unpaced.stats().rate_limit_waits, 0);
    assert_eq!(unpaced.stats().requests, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_refused_by_the_base_url_counts_as_an_error() {
    let backend = Backend::default();
    let client = builder().build_with(backend.clone()).unwrap();
    let request = Request::get("https://evil.example/v1/x")
        .body(Body::empty())
        .unwrap();
    client.clone().oneshot(request).await.unwrap_err();

    let stats = client.stats();
    assert_eq!(backend.count(), 0);
    assert_eq!(stats.attempts, 0);
    assert_eq!(stats.requests, 1);
    assert_eq!(
        stats.errors, 1,
        "a request that ended in an error: {stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_path_refused_while_building_counts_as_an_error_too() {
    let backend = Backend::default();
    let client = builder().build_with(backend.clone()).unwrap();
    client.get("/../admin").send().await.unwrap_err();

    let stats = client.stats();
    assert_eq!(backend.count(), 0);
    assert_eq!((stats.requests, stats.attempts, stats.errors), (1, 0, 1));
}
