//! Integration tests: the retry layer over calm's real transport (hyper-util) against the
//! calm-mock loopback server. Real time: these assert counts and contents, never durations.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use calm_client::transport::{Transport, TransportError};
use calm_mock::{MockApi, Reply};
use calm_retry::{
    Backoff, ReplayBody, ReplayBodyLayer, RetryInfo, RetryLayer, RetryPolicy, RetryReason,
    StopReason,
};
use http::{Method, Request, StatusCode};
use http_body_util::{channel::Channel, combinators::BoxBody, BodyExt, Full};
use tower::{BoxError, Layer, ServiceBuilder, ServiceExt};

type Streaming = BoxBody<Bytes, BoxError>;

fn policy() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(Duration::from_millis(5)))
}

fn info<B>(res: &http::Response<B>) -> &RetryInfo {
    res.extensions().get::<RetryInfo>().expect("RetryInfo")
}

/// A body fed through a channel by a task: not `Clone`, read once.
fn channel_body(chunks: Vec<Bytes>) -> Streaming {
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(2);
    tokio::spawn(async move {
        for chunk in chunks {
            if tx.send_data(chunk).await.is_err() {
                return;
            }
        }
    });
    body.boxed()
}

fn chunks(count: usize, size: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; size]))
        .collect()
}

#[tokio::test]
async fn unavailable_twice_then_ok() {
    let api = MockApi::start().await;
    api.script(
        "/v1/flaky",
        [
            Reply::status(503).body(vec![b'x'; 4096]),
            Reply::status(503).body(vec![b'x'; 4096]),
            Reply::ok(),
        ],
    );
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::get(api.url("/v1/flaky"))
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 3);
    let info = info(&res);
    assert_eq!(info.attempts(), 3);
    assert_eq!(
        info.retries()[1].reason(),
        RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "ok");
    // the retried 503s (with bodies) did not cost their connection: one was used throughout
    assert_eq!(api.connections(), 1);
}

#[tokio::test]
async fn get_is_retried_after_the_server_closes_the_connection() {
    let api = MockApi::start().await;
    api.script("/v1/drop", [Reply::close(), Reply::ok()]);
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::get(api.url("/v1/drop"))
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 2);
    assert_eq!(info(&res).retries()[0].reason(), RetryReason::Error);
}

#[tokio::test]
async fn post_is_not_retried_after_the_server_closes_the_connection() {
    let api = MockApi::start().await;
    api.script("/v1/drop", [Reply::close(), Reply::ok()]);
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::post(api.url("/v1/drop"))
        .body(Full::new(Bytes::from_static(b"charge")))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();

    assert_eq!(api.request_count(), 1);
    assert_eq!(err.info().unwrap().stop_reason(), &StopReason::NotRetryable);
    assert!(err.find_source::<TransportError>().is_some());
}

#[tokio::test]
async fn streaming_body_is_replayed_with_identical_bytes() {
    let api = MockApi::start().await;
    api.script("/v1/upload", [Reply::status(503), Reply::ok()]);
    let transport = Transport::builder()
        .build::<ReplayBody<Streaming>>()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(policy()).unwrap())
        .service(transport);

    let sent = chunks(8, 1024);
    let expected: Vec<u8> = sent.iter().flat_map(|c| c.to_vec()).collect();
    let req = Request::put(api.url("/v1/upload"))
        .body(channel_body(sent))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    let seen = api.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, expected);
    assert_eq!(seen[0].body, seen[1].body);
}

#[tokio::test]
async fn body_over_the_cap_is_sent_once_and_not_retried() {
    let api = MockApi::start().await;
    api.script("/v1/upload", [Reply::status(503), Reply::ok()]);
    let transport = Transport::builder()
        .build::<ReplayBody<Streaming>>()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(policy().max_replay_bytes(1024)).unwrap())
        .service(transport);

    let sent = chunks(4, 1024);
    let expected: Vec<u8> = sent.iter().flat_map(|c| c.to_vec()).collect();
    let req = Request::put(api.url("/v1/upload"))
        .body(channel_body(sent))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(info(&res).stop_reason(), &StopReason::BodyNotReplayable);
    let seen = api.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body, expected,
        "the one attempt sent the whole body"
    );
}

#[tokio::test]
async fn post_is_retried_on_429() {
    let api = MockApi::start().await;
    api.script(
        "/v1/orders",
        [Reply::status(429).header("retry-after", "0"), Reply::ok()],
    );
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::builder()
        .method(Method::POST)
        .uri(api.url("/v1/orders"))
        .body(Full::new(Bytes::from_static(b"{\"qty\":1}")))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    let seen = api.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.body == "{\"qty\":1}"));
}

#[tokio::test]
async fn post_is_retried_when_the_connection_is_refused() {
    // a port nobody listens on
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy().max_retries(2).no_budget())
        .unwrap()
        .layer(transport);

    let req = Request::post(format!("http://127.0.0.1:{port}/v1/orders"))
        .body(Full::new(Bytes::from_static(b"order")))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();

    let info = err.info().unwrap();
    assert_eq!(info.attempts(), 3);
    assert!(info
        .retries()
        .iter()
        .all(|r| r.reason() == RetryReason::Connect));
    assert_eq!(info.stop_reason(), &StopReason::AttemptsExhausted);
    let transport_error = err.find_source::<TransportError>().expect("TransportError");
    assert!(transport_error.is_connect());
}

/// A port on loopback nobody listens on.
fn refusing_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// Sent means sent: the POST was answered with a 303, so a refused connection on the way to
/// the 303's target does not make it "never sent".
#[tokio::test]
async fn post_redirected_to_a_refusing_port_is_sent_once() {
    let api = MockApi::start().await;
    let target = format!("http://127.0.0.1:{}/receipt", refusing_port());
    api.script("/v1/orders", [Reply::redirect(303, &target)]);
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::post(api.url("/v1/orders"))
        .body(Full::from("order"))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();

    assert_eq!(api.request_count(), 1, "the POST went out once");
    assert_eq!(err.info().unwrap().attempts(), 1);
    assert_eq!(err.info().unwrap().stop_reason(), &StopReason::NotRetryable);
    let transport_error = err
        .find_source::<TransportError>()
        .expect("transport error");
    assert_eq!(transport_error.redirect_hop(), Some(1));
    assert!(!transport_error.is_connect(), "the request itself was sent");
    assert!(transport_error.to_string().starts_with("redirect hop 1: "));
}

/// Sent means sent: a 429 from the 303's target does not say the POST was refused unprocessed.
#[tokio::test]
async fn post_redirected_to_a_429_is_sent_once() {
    let api = MockApi::start().await;
    api.script("/v1/orders", [Reply::redirect(303, "/v1/receipt")]);
    api.script("/v1/receipt", [Reply::status(429), Reply::ok()]);
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::post(api.url("/v1/orders"))
        .body(Full::from("order"))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let posts = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST)
        .count();
    assert_eq!(posts, 1, "the POST went out once");
    assert_eq!(api.request_count(), 2);
    assert_eq!(info(&res).stop_reason(), &StopReason::NotRetryable);
}

/// A GET through the same chain is idempotent: the 429 of the hop is retried from the start.
#[tokio::test]
async fn get_redirected_to_a_429_is_retried_from_the_start() {
    let api = MockApi::start().await;
    api.script(
        "/v1/report",
        [
            Reply::redirect(303, "/v1/file"),
            Reply::redirect(303, "/v1/file"),
        ],
    );
    api.script("/v1/file", [Reply::status(429), Reply::ok()]);
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = RetryLayer::new(policy()).unwrap().layer(transport);

    let req = Request::get(api.url("/v1/report"))
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 4);
    assert_eq!(info(&res).attempts(), 2);
}
