//! Redirects through the whole stack: every hop to the API's origin pays for its place, a hop
//! to another origin does not, and a POST answered with a redirect is never sent again.

use std::time::Duration;

use calm::retry::StopReason;
use calm::{Client, RetryPolicy};
use calm_mock::{MockApi, Reply};
use http::{Method, StatusCode};

use crate::support::per_second;

/// A port on loopback nobody listens on.
fn refusing_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test]
async fn every_hop_to_the_origin_takes_a_place() {
    let api = MockApi::start().await;
    api.script("/v1/a", [Reply::redirect(303, "/v1/b")]);
    api.script("/v1/b", [Reply::redirect(307, "/v1/c")]);
    let client = Client::builder(api.base_url())
        .rate_limit(per_second(2))
        .build()
        .unwrap();

    let response = client.get("/v1/a").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let arrivals: Vec<_> = api.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 3, "the original and two hops");
    for pair in arrivals.windows(2) {
        // NOTE: places are 500 ms apart; the first arrival also paid for the connect.
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(450),
            "hops {:?} apart",
            pair[1] - pair[0]
        );
    }
    let stats = client.stats();
    assert_eq!(stats.redirects, 2);
    assert_eq!(stats.attempts, 1, "one attempt, three requests");
    assert_eq!(response.retry_info().unwrap().attempts(), 1);
}

#[tokio::test]
async fn a_hop_to_another_origin_spends_no_place() {
    let api = MockApi::start().await;
    let storage = MockApi::start().await;
    api.script(
        "/v1/export",
        [Reply::redirect(303, &storage.url("/bucket/file?sig=x"))],
    );
    let client = Client::builder(api.base_url())
        .bearer_auth("secret-token")
        .rate_limit(per_second(1))
        .build()
        .unwrap();

    let response = client.get("/v1/export").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let sent = api.requests()[0].at;
    let hop = &storage.requests()[0];
    assert!(hop.headers.get("authorization").is_none());
    assert_eq!(api.requests()[0].headers["host"], api.addr().to_string());
    assert_eq!(hop.headers.get_all("host").iter().count(), 1);
    assert_eq!(hop.headers["host"], storage.addr().to_string());
    // One place taken: the next one is free within the quota's one interval. Had the hop
    // waited for a place of its own, it would have taken the second one.
    let snapshot = client.limiter_snapshot().unwrap();
    assert!(
        snapshot.next_free <= sent + Duration::from_secs(1),
        "two places taken: next free {:?} after the request",
        snapshot.next_free - sent
    );
    assert_eq!(client.stats().redirects, 1);
}

#[tokio::test]
async fn a_post_redirected_to_a_refusing_port_is_sent_once() {
    let api = MockApi::start().await;
    let target = format!("http://127.0.0.1:{}/receipt", refusing_port());
    api.script("/v1/orders", [Reply::redirect(303, &target)]);
    let client = Client::builder(api.base_url()).build().unwrap();

    let error = client.post("/v1/orders").send().await.unwrap_err();
    assert_eq!(api.request_count(), 1, "{error}");
}

#[tokio::test]
async fn a_post_redirected_to_a_429_is_sent_once() {
    let api = MockApi::start().await;
    api.script("/v1/orders", [Reply::redirect(303, "/v1/receipt")]);
    api.script("/v1/receipt", [Reply::status(429), Reply::ok()]);
    let client = Client::builder(api.base_url())
        .retry(RetryPolicy::default().backoff(calm::Backoff::none()))
        .build()
        .unwrap();

    let response = client.post("/v1/orders").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let posts = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST)
        .count();
    assert_eq!(posts, 1);
    assert_eq!(
        response.retry_info().unwrap().stop_reason(),
        &StopReason::NotRetryable
    );
}

#[tokio::test]
async fn another_origins_retry_after_does_not_pause_the_api() {
    let api = MockApi::start().await;
    let storage = MockApi::start().await;
    storage.script(
        "/bucket/file",
        [Reply::status(503).header("retry-after", "30")],
    );
    api.script(
        "/v1/export",
        [Reply::redirect(303, &storage.url("/bucket/file"))],
    );
    let client = Client::builder(api.base_url())
        .rate_limit(per_second(10))
        .no_retries()
        .build()
        .unwrap();

    let response = client.get("/v1/export").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let snapshot = client.limiter_snapshot().unwrap();
    assert_eq!(snapshot.paused_until, None, "paused by another server");
    assert_eq!(client.stats().server_pauses, 0);
}

#[tokio::test]
async fn the_apis_own_retry_after_after_a_hop_pauses_it() {
    let api = MockApi::start().await;
    api.script("/v1/export", [Reply::redirect(303, "/v1/export/file")]);
    api.script(
        "/v1/export/file",
        [Reply::status(503).header("retry-after", "30")],
    );
    let client = Client::builder(api.base_url())
        .rate_limit(per_second(10))
        .no_retries()
        .build()
        .unwrap();

    let response = client.get("/v1/export").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(client.limiter_snapshot().unwrap().paused_until.is_some());
    assert_eq!(client.stats().server_pauses, 1);
}

/// The headers the request to `path` arrived with at `api`, by name.
fn arrived(api: &MockApi, path: &str) -> http::HeaderMap {
    api.requests()
        .into_iter()
        .find(|r| r.uri.path() == path)
        .unwrap_or_else(|| panic!("no request to {path}"))
        .headers
}

#[tokio::test]
async fn default_headers_reach_every_hop_and_credentials_only_the_origin() {
    let api = MockApi::start().await;
    let other = MockApi::start().await;
    // api → api (same origin) → other → api: once the request left, no credential comes back.
    api.script("/v1/a", [Reply::redirect(307, "/v1/b")]);
    api.script("/v1/b", [Reply::redirect(307, &other.url("/c"))]);
    other.script("/c", [Reply::redirect(307, &api.url("/v1/d"))]);
    let mut key = http::HeaderValue::from_static("key-123");
    key.set_sensitive(true);
    let client = Client::builder(api.base_url())
        .bearer_auth("secret-token")
        .default_header("x-api-key", key)
        .user_agent("agent/1")
        .build()
        .unwrap();

    let response = client.get("/v1/a").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for path in ["/v1/a", "/v1/b"] {
        let headers = arrived(&api, path);
        assert_eq!(headers["authorization"], "Bearer secret-token", "{path}");
        assert_eq!(headers["x-api-key"], "key-123", "{path}");
        assert_eq!(headers["user-agent"], "agent/1", "{path}");
    }
    for (server, path) in [(&other, "/c"), (&api, "/v1/d")] {
        let headers = arrived(server, path);
        assert!(headers.get("authorization").is_none(), "{path}");
        assert!(headers.get("x-api-key").is_none(), "{path}");
        assert_eq!(headers["user-agent"], "agent/1", "{path}");
    }
}

#[tokio::test]
async fn a_requests_own_header_wins_over_the_default_on_every_hop() {
    let api = MockApi::start().await;
    api.script("/v1/a", [Reply::redirect(307, "/v1/b")]);
    let client = Client::builder(api.base_url())
        .user_agent("agent/1")
        .default_header("accept", "application/json")
        .build()
        .unwrap();

    let response = client
        .get("/v1/a")
        .header("user-agent", "mine/2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for path in ["/v1/a", "/v1/b"] {
        let headers = arrived(&api, path);
        let agents: Vec<_> = headers.get_all("user-agent").iter().collect();
        assert_eq!(agents, ["mine/2"], "{path}");
        assert_eq!(headers["accept"], "application/json", "{path}");
    }
}
