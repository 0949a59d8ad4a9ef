//! Run with: cargo run --example custom_hyper
//!
//! calm's three layers over a hyper-util client you build yourself, with no facade: your own
//! `HttpConnector` settings (TCP_NODELAY, keep-alive, connect timeout) and pool settings,
//! composed with `tower::ServiceBuilder` as
//!
//! ```text
//! SharedClientLayer → RetryLayer → RateLimitLayer → hyper_util::client::legacy::Client
//! ```
//!
//! The request body is `Full<Bytes>`, which is `Clone`, so `RetryLayer` replays it as is.
//! Against calm-mock on 127.0.0.1 the program sends a few requests that fail first, prints
//! each status with its `RetryInfo`, then five requests at once from clones of the stack
//! (spaced by their one shared limiter), and the limiter's snapshot (about 3 s).

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use calm::retry::{RetryInfo, IDEMPOTENCY_KEY};
use calm::{Backoff, Quota, RateLimitLayer, RetryLayer, RetryPolicy, SharedClientLayer};
use calm_mock::{MockApi, Reply};
use futures_util::future::join_all;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let api = MockApi::start().await;
    api.script(
        "/v1/flaky",
        [Reply::status(503), Reply::status(503), Reply::ok()],
    );
    api.script(
        "/v1/busy",
        [Reply::status(429).header("retry-after", 1), Reply::ok()],
    );
    api.script(
        "/v1/orders",
        [Reply::status(503), Reply::status(503), Reply::ok()],
    );
    api.script("/v1/gone", [Reply::status(404)]);

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(30)));
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    let hyper_client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4)
        .pool_timer(TokioTimer::new())
        .build(connector);

    let session = SharedClientLayer::builder(api.url("/v1"))
        .user_agent("custom-hyper-example/0.1")
        .default_header("accept", "application/json")
        .build()?;
    let retry = RetryLayer::new(
        RetryPolicy::default()
            .max_retries(3)
            .backoff(Backoff::exponential(Duration::from_millis(100))),
    )?;
    // NOTE: hints are off on a bare layer (it may guard a server's own routes); this one paces
    // calls to an upstream API, so it listens to the API's Retry-After and quota headers.
    let rate_limit =
        RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).expect("10"))).server_hints(true);
    let limiter = rate_limit.limiter().clone();

    let client = ServiceBuilder::new()
        .layer(session)
        .layer(retry)
        .layer(rate_limit)
        .service(hyper_client);
    println!("base URL {}, 10 requests/s\n", api.url("/v1"));

    let requests = [
        get("/flaky")?,
        get("/busy")?,
        get("/gone")?,
        // A POST is not retried after a 503: the server may have acted on it...
        post("/orders", None)?,
        // ...unless it carries an Idempotency-Key, which makes a second try safe.
        post("/orders", Some("order-7f3a"))?,
    ];
    for request in requests {
        let shown = format!("{} {}", request.method(), request.uri());
        let response = client.clone().oneshot(request).await?;
        println!("{shown:<16} -> {}", response.status());
        if let Some(info) = response.extensions().get::<RetryInfo>() {
            print_retry_info(info);
        }
    }

    println!("\n5 GETs at once, each from its own clone of the stack:");
    let first = api.request_count();
    let responses = join_all((0..5).map(|i| {
        let mut client = client.clone();
        async move {
            let request = get(&format!("/items/{i}"))?;
            client.ready().await?.call(request).await
        }
    }))
    .await;
    let statuses: Vec<_> = responses
        .into_iter()
        .map(|r| r.map(|response| response.status().as_u16()))
        .collect::<Result<_, _>>()?;
    let arrivals = &api.requests()[first..];
    let gaps: Vec<_> = arrivals
        .windows(2)
        .map(|pair| pair[1].at.duration_since(pair[0].at))
        .collect();
    println!("  statuses {statuses:?}");
    println!("  gaps between arrivals at the server {gaps:.0?}");

    let snapshot = limiter.snapshot();
    println!("\nlimiter snapshot:");
    println!(
        "  waits {} totalling {:.1?}, queued {}",
        snapshot.waits, snapshot.total_waited, snapshot.queued
    );
    println!(
        "  throttling responses seen {}, pauses applied {}",
        snapshot.throttled, snapshot.pauses
    );
    println!(
        "  next free place in {:.0?}",
        snapshot
            .next_free
            .saturating_duration_since(snapshot.taken_at)
    );
    println!(
        "\nthe server saw {} requests over {} connection(s)",
        api.request_count(),
        api.connections()
    );
    Ok(())
}

fn get(path: &str) -> Result<Request<Full<Bytes>>, http::Error> {
    Request::get(path).body(Full::default())
}

fn post(path: &str, idempotency_key: Option<&str>) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut request = Request::builder().method(Method::POST).uri(path);
    if let Some(key) = idempotency_key {
        request = request.header(IDEMPOTENCY_KEY, key);
    }
    request.body(Full::new(Bytes::from_static(br#"{"item":42}"#)))
}

fn print_retry_info(info: &RetryInfo) {
    println!(
        "    {} attempt(s), stopped: {}",
        info.attempts(),
        info.stop_reason()
    );
    for retry in info.retries() {
        println!(
            "    retried after {}, waited {:.0?} ({:?})",
            retry.reason(),
            retry.wait(),
            retry.wait_source()
        );
    }
}
