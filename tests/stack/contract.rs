//! The facade's own contract at its edges: readiness inside the future, dropped requests,
//! deadlines that cannot be represented, configurations that could never send, headers.

use std::time::Duration;

use calm::{Body, BuildErrorKind};
use http::Request;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::support::{builder, per_minute, secs, Answer, Backend};

#[tokio::test(start_paused = true)]
async fn a_request_dropped_while_waiting_for_its_place_gives_it_back() {
    let backend = Backend::default();
    let client = builder()
        .rate_limit(per_minute(1))
        .build_with(backend.clone())
        .unwrap();
    let started = Instant::now();
    client.get("/first").send().await.unwrap();

    // The next place is a minute away; this request gives up on it after 10 s.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get("/abandoned").send().await }
    });
    tokio::time::sleep(secs(10)).await;
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());

    // The place it held is free again: the next request takes it, not the one after.
    client.get("/next").send().await.unwrap();
    assert_eq!(started.elapsed(), secs(60));
    let uris: Vec<_> = backend
        .arrivals()
        .into_iter()
        .map(|a| a.uri.path().to_owned())
        .collect();
    assert_eq!(uris, ["/v1/first", "/v1/next"]);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.attempts, stats.errors), (3, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_request_dropped_while_waiting_to_retry_gives_its_place_back() {
    let backend = Backend::new([Answer::status(503), Answer::ok()]);
    let client = builder()
        .rate_limit(per_minute(1))
        .build_with(backend.clone())
        .unwrap();
    let started = Instant::now();

    // The first attempt goes at once; its retry waits a minute for a place, then is dropped.
    let retrying = tokio::spawn({
        let client = client.clone();
        async move { client.get("/retried").send().await }
    });
    tokio::time::sleep(secs(10)).await;
    assert_eq!(backend.count(), 1);
    retrying.abort();
    assert!(retrying.await.unwrap_err().is_cancelled());

    client.get("/next").send().await.unwrap();
    assert_eq!(started.elapsed(), secs(60));
    assert_eq!(backend.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_too_far_to_represent_is_no_deadline() {
    let backend = Backend::default();
    let client = builder()
        .timeout(Duration::MAX)
        .build_with(backend.clone())
        .unwrap();
    let response = client.get("/x").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(backend.count(), 1);
}

#[test]
fn max_in_flight_zero_fails_the_build() {
    // NOTE: with no in-flight slot at all, every request would wait forever.
    let error = builder()
        .max_in_flight(0)
        .build_with(Backend::default())
        .unwrap_err();
    assert_eq!(error.kind(), BuildErrorKind::MaxInFlight);
    assert!(error.to_string().contains("max_in_flight"), "{error}");
    assert!(builder()
        .max_in_flight(1)
        .build_with(Backend::default())
        .is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_header_set_twice_is_appended_and_still_replaces_the_default() {
    let backend = Backend::default();
    let client = builder()
        .default_header("accept", "application/json")
        .build_with(backend.clone())
        .unwrap();
    client
        .get("/x")
        .header("accept", "text/csv")
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    let arrivals = backend.arrivals();
    let accept: Vec<_> = arrivals[0].headers.get_all("accept").iter().collect();
    assert_eq!(accept, ["text/csv", "text/plain"]);
}

#[tokio::test(start_paused = true)]
async fn futures_are_send() {
    fn send<T: Send>(value: T) -> T {
        value
    }
    let backend = Backend::default();
    let mut client = builder().build_with(backend.clone()).unwrap();
    let request = Request::get("/x").body(Body::empty()).unwrap();
    send(client.call(request)).await.unwrap();
    send(client.get("/y").send()).await.unwrap();
    let request = Request::get("/z").body(Body::empty()).unwrap();
    send(client.clone().oneshot(request)).await.unwrap();
    assert_eq!(backend.count(), 3);
}

/// One documented default caps both how long the retry layer sleeps on `Retry-After` and how
/// long a server hint may pause the rate limiter.
#[test]
fn the_retry_after_cap_and_the_pause_cap_agree() {
    assert_eq!(
        calm::ratelimit::DEFAULT_MAX_PAUSE,
        calm::retry::DEFAULT_MAX_RETRY_AFTER
    );
    assert_eq!(
        calm::RetryPolicy::default().configured_max_retry_after(),
        calm::ratelimit::DEFAULT_MAX_PAUSE
    );
}
