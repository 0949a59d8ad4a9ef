//! A server's `Retry-After` pauses every registry user of its base URL.

use std::time::Duration;

use calm::retry::RetryReason;
use calm::Registry;
use calm_mock::{MockApi, Reply};
use http::StatusCode;
use tokio::time::Instant;

use super::get;
use crate::support::{ms, per_second};

#[tokio::test]
async fn a_retry_after_pauses_every_registry_user_of_the_base_url() {
    let api = MockApi::start().await;
    api.script(
        "/limited",
        [Reply::status(429).header("retry-after", "2"), Reply::ok()],
    );
    // A generous quota: the limiter exists to listen to the server, not to pace.
    let registry = Registry::new(|builder| builder.rate_limit(per_second(1000)));
    let first = registry.get(&api.base_url()).unwrap();

    let limited = tokio::spawn({
        let first = first.clone();
        async move { first.get("/limited").send().await }
    });
    let pause_end = wait_for_pause(&first).await;

    // Other users of the base URL, asking during the pause.
    let (b, c) = (
        registry.get(&api.base_url()).unwrap(),
        registry.get(&api.base_url()).unwrap(),
    );
    let asked = Instant::now();
    let (rb, rc) = tokio::join!(get(&b, "/other"), get(&c, "/other"));
    assert_eq!((rb.0, rc.0), (StatusCode::OK, StatusCode::OK));
    assert!(
        asked < pause_end,
        "the requests were not made during the pause"
    );

    let response = limited.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let requests = api.requests();
    assert_eq!(requests.len(), 4);
    let throttled = &requests[0];
    assert_eq!(throttled.uri.path(), "/limited");
    assert!(throttled.at < pause_end);
    // Everything after the 429, the retry included, reached the server after the pause.
    for request in &requests[1..] {
        assert!(
            request.at >= pause_end,
            "{} arrived {:?} before the pause ended",
            request.uri,
            pause_end - request.at
        );
    }

    let stats = first.stats();
    assert_eq!(stats.responses_429, 1);
    assert_eq!(
        stats.retries_by_reason,
        [(RetryReason::Status(StatusCode::TOO_MANY_REQUESTS), 1)]
    );
    let snapshot = first.limiter_snapshot().unwrap();
    assert_eq!((snapshot.throttled, snapshot.pauses), (1, 1));
    assert!(snapshot.waits >= 2, "{snapshot:?}");
}

/// Polls the client's limiter until a server pause is in force; returns its end.
async fn wait_for_pause(client: &calm::Client) -> Instant {
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = client.limiter_snapshot().unwrap().paused_until {
            return end;
        }
        assert!(Instant::now() < give_up, "the 429 never paused the limiter");
        tokio::time::sleep(ms(5)).await;
    }
}
