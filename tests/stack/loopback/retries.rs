//! Retries through the real transport: every attempt paced, replayed with its headers.

use calm::retry::RetryReason;
use calm::{Body, Client, Registry};
use calm_mock::{MockApi, Reply};
use http::header::{HeaderName, HeaderValue};
use http::{Request, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;

use super::get;
use crate::support::{immediate_retries, per_second};

#[tokio::test]
async fn a_503_503_200_sequence_is_retried_to_success_through_the_limiter() {
    let api = MockApi::start().await;
    api.script(
        "/v1/items",
        [
            Reply::status(503),
            Reply::status(503),
            Reply::ok().body("[1,2]"),
        ],
    );
    let client = Client::builder(api.base_url())
        .bearer_auth("t0k3n")
        .rate_limit(per_second(2))
        .retry(immediate_retries())
        .build()
        .unwrap();

    let response = client.get("/v1/items?page=2").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.retry_info().unwrap().attempts(), 3);
    assert_eq!(response.text().await.unwrap(), "[1,2]");

    let requests = api.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.uri.path_and_query().unwrap(), "/v1/items?page=2");
        assert_eq!(request.headers["authorization"], "Bearer t0k3n");
        assert_eq!(
            request.headers["user-agent"],
            calm::client::DEFAULT_USER_AGENT
        );
    }
    let stats = client.stats();
    assert_eq!((stats.requests, stats.attempts), (1, 3));
    assert_eq!(
        stats.retries_by_reason,
        [(RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE), 2)]
    );
    // The retries go at once (no backoff), so each had to wait for its place in the limiter.
    assert_eq!(client.limiter_snapshot().unwrap().waits, 2);
    assert_eq!(api.connections(), 1);
}

#[tokio::test]
async fn a_dropped_connection_is_retried_on_a_new_one() {
    let api = MockApi::start().await;
    api.script("/flaky", [Reply::close(), Reply::ok()]);
    let client = Client::builder(api.base_url())
        .retry(immediate_retries())
        .build()
        .unwrap();

    assert_eq!(get(&client, "/flaky").await, (StatusCode::OK, "ok".into()));
    assert_eq!(api.request_count(), 2);
    assert_eq!(api.connections(), 2);
    assert_eq!(client.stats().retries_by_reason, [(RetryReason::Error, 1)]);
}

#[tokio::test]
async fn a_registry_client_works_under_a_users_own_layer() {
    let api = MockApi::start().await;
    api.script("/v1/items", [Reply::status(503), Reply::ok()]);
    let registry = Registry::new(|builder| builder.retry(immediate_retries()));
    let client = registry.get(&api.base_url()).unwrap();

    let svc = ServiceBuilder::new()
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("x-source"),
            HeaderValue::from_static("tests"),
        ))
        .service(client.clone());
    let request = Request::get("/v1/items").body(Body::empty()).unwrap();
    let response = svc.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.headers["x-source"] == "tests"));
    assert_eq!(client.stats().attempts, 2);
}

#[tokio::test]
async fn a_post_that_never_left_is_retried_and_the_error_says_why() {
    // A port that was just free: connecting to it is refused, so nothing was ever sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(format!("http://127.0.0.1:{port}/v1"))
        .retry(immediate_retries().max_retries(2))
        .build()
        .unwrap();

    let error = client.post("/orders").body("{}").send().await.unwrap_err();
    let retry = error
        .find_source::<calm::retry::error::RetryError>()
        .expect("the retry layer reports the last attempt's error");
    let info = retry.info().unwrap();
    assert_eq!(
        info.attempts(),
        3,
        "a POST that never left is safe to retry"
    );
    assert!(info
        .retries()
        .iter()
        .all(|retry| retry.reason() == RetryReason::Connect));
    let transport = retry
        .find_source::<calm::client::transport::TransportError>()
        .expect("the transport's error is in the chain");
    assert!(transport.is_connect());
    assert_eq!(client.stats().errors, 1);
}

#[tokio::test]
async fn a_post_whose_tls_handshake_failed_counts_as_never_sent() {
    let api = MockApi::builder().tls().start().await;
    // The client does not trust the mock's certificate: every handshake fails before a byte
    // of the request is sent.
    let client = Client::builder(api.base_url())
        .retry(immediate_retries().max_retries(1))
        .build()
        .unwrap();

    let error = client.post("/orders").body("{}").send().await.unwrap_err();
    let retry = error
        .find_source::<calm::retry::error::RetryError>()
        .unwrap();
    assert_eq!(retry.info().unwrap().attempts(), 2);
    assert_eq!(
        retry.info().unwrap().retries()[0].reason(),
        RetryReason::Connect
    );
    assert_eq!(api.request_count(), 0);
}
