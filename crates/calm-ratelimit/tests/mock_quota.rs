//! Against calm-mock's server-side quota, through calm-client's real transport, on real time:
//! these tests count what the server answered; they assert no durations.
#![allow(missing_docs)]

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use calm_client::transport::Transport;
use calm_mock::{MockApi, QuotaHeaders};
use calm_ratelimit::{Quota, RateLimitLayer};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

const WINDOW: Duration = Duration::from_secs(1);
const SERVER_LIMIT: u32 = 20;

/// Sends `total` GETs through `layer` over the real transport, from 4 tasks sharing one
/// stack; returns how many were answered 429 and how many server windows the run spanned.
async fn run(api: &MockApi, layer: RateLimitLayer, total: usize) -> (usize, u64) {
    let transport = Transport::builder().build::<Full<Bytes>>().unwrap();
    let svc = layer.layer(transport);
    let url = api.url("/v1/items");
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let svc = svc.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut throttled = 0;
                for _ in 0..total / 4 {
                    let request = Request::get(&url).body(Full::default()).unwrap();
                    let response = svc.clone().oneshot(request).await.unwrap();
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        throttled += 1;
                    }
                    response.into_body().collect().await.unwrap();
                }
                throttled
            })
        })
        .collect();
    let mut throttled = 0;
    for task in tasks {
        throttled += task.await.unwrap();
    }
    let windows = started.elapsed().as_millis().div_ceil(WINDOW.as_millis()) as u64 + 1;
    assert_eq!(api.request_count(), total);
    assert_eq!(api.count_429(), throttled);
    (throttled, windows)
}

fn per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).unwrap())
}

#[tokio::test]
async fn a_client_at_the_quota_is_never_throttled() {
    let api = MockApi::builder().quota(SERVER_LIMIT, WINDOW).start().await;
    let layer = RateLimitLayer::new(per_second(SERVER_LIMIT)).server_hints(true);
    let (throttled, _) = run(&api, layer, 60).await;
    assert_eq!(throttled, 0);
}

#[tokio::test]
async fn a_client_twice_too_fast_is_paused_by_the_server_hints() {
    for style in [
        QuotaHeaders::XRateLimit,
        QuotaHeaders::XRateLimitEpoch,
        QuotaHeaders::Ietf,
    ] {
        let api = MockApi::builder()
            .quota(SERVER_LIMIT, WINDOW)
            .quota_headers(style)
            .start()
            .await;
        let layer = RateLimitLayer::new(per_second(2 * SERVER_LIMIT)).server_hints(true);
        let limiter = layer.limiter().clone();
        let (throttled, windows) = run(&api, layer, 40).await;
        assert!(
            throttled as u64 <= windows,
            "{style:?}: {throttled} throttled in {windows} windows"
        );
        assert!(limiter.snapshot().pauses >= 1, "{style:?}: never paused");
    }
}

#[tokio::test]
async fn without_hints_a_client_twice_too_fast_is_throttled_often() {
    let api = MockApi::builder().quota(SERVER_LIMIT, WINDOW).start().await;
    let layer = RateLimitLayer::new(per_second(2 * SERVER_LIMIT)).server_hints(false);
    let (throttled, windows) = run(&api, layer, 40).await;
    assert!(
        throttled as u64 > windows,
        "{throttled} throttled in {windows} windows"
    );
}
