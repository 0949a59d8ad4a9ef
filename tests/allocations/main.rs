//! Allocation counts the speed work brought down, so a change that brings one back fails
//! here rather than only in the `allocations` bench.
//!
//! Counted by `allocation-counter`'s global allocator, on the thread that runs the measured
//! code only: the loopback server runs on a runtime of its own, on another thread, and the
//! client on a current-thread runtime on the test's thread.

#[path = "../../benches/support/raw_client.rs"]
mod raw_client;

use std::num::NonZeroU32;

use allocation_counter::measure;
use bytes::Bytes;
use calm::client::shared::add_default_headers;
use calm::{BaseUrl, Client, Quota, RetryPolicy};
use calm_mock::{MockApi, Reply};
use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, HOST, USER_AGENT,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// Requests measured per client, after as many to warm the connection up.
const REQUESTS: u64 = 200;

/// Allocations per request of the `metrics` feature with no recorder installed: the label
/// list of each of the five metrics a request records (its duration, the active-request
/// gauge up and down, the attempt counter, the rate-limiter wait), and the host name the
/// retry layer's labels share (the rate limiter's is made once, with its layer's host).
const METRICS_ALLOCATIONS: f64 = 6.0;

#[test]
fn a_uri_resolved_under_the_base_url_clones_without_allocating() {
    let base = BaseUrl::parse("https://api.example.com/v1/").unwrap();
    for reference in ["/users", "users/42?page=2", "/search?q=a%20b&sort=-id"] {
        let uri = base.resolve_str(reference).unwrap();
        // NOTE: the retry layer's spare copy and the redirect follower's clone every URI.
        let counted = measure(|| drop(std::hint::black_box(uri.clone())));
        assert_eq!(counted.count_total, 0, "{reference}");
    }
}

#[test]
fn default_headers_leave_room_for_the_headers_the_transport_adds() {
    let names = [USER_AGENT, AUTHORIZATION, ACCEPT];
    for count in 1..=names.len() {
        let mut defaults = HeaderMap::new();
        for name in &names[..count] {
            defaults.insert(name.clone(), HeaderValue::from_static("x"));
        }
        for (credentials, own) in [(true, 0), (false, 0), (true, 3), (false, 3)] {
            let mut headers = HeaderMap::new();
            for n in 0..own {
                let name = HeaderName::try_from(format!("x-own-{n}")).unwrap();
                headers.insert(name, HeaderValue::from_static("y"));
            }
            add_default_headers(&mut headers, &defaults, credentials).unwrap();
            let counted = measure(|| {
                headers.insert(HOST, HeaderValue::from_static("api.example.com"));
                headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
                // NOTE: what hyper-util's client does before it looks for a `Host`: its
                // `entry` makes room for one more header first.
                headers
                    .entry(HOST)
                    .or_insert(HeaderValue::from_static("unused"));
            });
            assert_eq!(
                counted.count_total, 0,
                "{count} defaults, {own} own headers, credentials: {credentials}"
            );
            assert_eq!(headers[USER_AGENT], "x");
            assert_eq!(headers[HOST], "api.example.com");
            let with_credentials = count > 1 && credentials;
            assert_eq!(headers.contains_key(AUTHORIZATION), with_credentials);
        }
    }
}

#[test]
fn the_client_makes_at_most_one_allocation_per_request_more_than_raw_hyper() {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = server.block_on(MockApi::start());
    api.script(
        "/x",
        std::iter::repeat_n(Reply::ok().body("ok"), 4 * REQUESTS as usize),
    );
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let raw = raw_allocations(&client_rt, &api.url("/x"));
    let calm = calm_allocations(&client_rt, &api.base_url());
    // NOTE: the resolved URI, the boxed stack future and the `RetryInfo` of each response,
    // less the two of hyper-util's that calm's transport saves (`transport/host.rs`, and the
    // room `add_default_headers` leaves); the tenth is room for a rare allocation of the pool
    // or the timer within the window, not for a second per request. With the `metrics`
    // feature, the `metrics` macros build the keys and labels of each request's metrics even
    // when no recorder is installed.
    let allowed = if cfg!(feature = "metrics") {
        1.1 + METRICS_ALLOCATIONS
    } else {
        1.1
    };
    assert!(
        calm - raw <= allowed,
        "calm::Client: {calm:.2} allocations per request, raw hyper-util: {raw:.2}"
    );
    assert!(raw > 5.0, "the raw client was measured: {raw:.2}");

    let _guard = server.enter();
    drop(api);
}

/// Allocations per request of hyper-util's legacy client (with the settings of calm's
/// transport), body read to its end.
fn raw_allocations(rt: &Runtime, url: &str) -> f64 {
    let uri: Uri = url.parse().unwrap();
    let client = raw_client::raw_client::<Full<Bytes>>();
    let send = || {
        rt.block_on(async {
            let request = Request::get(uri.clone()).body(Full::default()).unwrap();
            let response = client.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.into_body().collect().await.unwrap();
        });
    };
    per_request(send)
}

/// Allocations per request of `calm::Client` (its own transport, a rate limit that does not
/// bind, the default retries), used as its docs show.
fn calm_allocations(rt: &Runtime, base: &str) -> f64 {
    let _guard = rt.enter();
    let client = Client::builder(base)
        .rate_limit(Quota::per_second(NonZeroU32::new(1_000_000).unwrap()))
        .retry(RetryPolicy::default())
        .build()
        .unwrap();
    let send = || {
        rt.block_on(async {
            let response = client.get("/x").send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.bytes().await.unwrap(), "ok");
        });
    };
    per_request(send)
}

fn per_request(send: impl Fn()) -> f64 {
    for _ in 0..REQUESTS {
        send();
    }
    let counted = measure(|| {
        for _ in 0..REQUESTS {
            send();
        }
    });
    counted.count_total as f64 / REQUESTS as f64
}
