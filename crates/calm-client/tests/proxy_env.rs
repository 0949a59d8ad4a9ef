//! Proxies from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
//!
//! A test binary of its own, because the environment is one per process: each test holds
//! one lock from start to end (so no test changes the environment while another reads it,
//! C code such as the resolver included), sets exactly the variables it needs (clearing the
//! others, so the machine's own settings never count), builds its transport, and puts the
//! environment back. The transport reads the environment only in `build`.
//!
//! Proxies from the environment never serve loopback destinations, so these tests ask for
//! made-up hosts (`api.test`) and the loopback proxy routes them to a mock.
#![allow(missing_docs)]

#[allow(dead_code)]
#[path = "proxy/support.rs"]
mod support;

use calm_client::transport::{Transport, TransportError, TransportErrorKind};
use calm_mock::MockApi;
use http::{Method, StatusCode};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use support::{get, header, LoopbackProxy, Options};
use tokio::sync::{Mutex, MutexGuard};

static ENV: Mutex<()> = Mutex::const_new(());

type EnvLock = MutexGuard<'static, ()>;

const VARS: [&str; 9] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// `Basic base64("calm:s3cr@t")`.
const AUTH: &str = "Basic Y2FsbTpzM2NyQHQ=";

/// Runs `f` with exactly `vars` set among the proxy variables, then restores them; only
/// with the lock held.
fn with_env<T>(_held: &EnvLock, vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    let saved: Vec<_> = VARS.iter().map(|n| (*n, std::env::var_os(n))).collect();
    for name in VARS {
        std::env::remove_var(name);
    }
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    let out = catch_unwind(AssertUnwindSafe(f));
    for (name, value) in saved {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    }
    out.unwrap_or_else(|panic| resume_unwind(panic))
}

fn build_with_env(held: &EnvLock, vars: &[(&str, &str)]) -> Result<Transport, TransportError> {
    with_env(held, vars, || Transport::builder().build())
}

/// A proxy that sends every request to `api`, whatever its host.
async fn proxy_to(api: &MockApi, require: Option<&'static str>) -> LoopbackProxy {
    LoopbackProxy::with(Options {
        require,
        route_to: Some(api.addr()),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn http_proxy_carries_requests_with_its_credentials() {
    let env = ENV.lock().await;
    let api = MockApi::start().await;
    let proxy = proxy_to(&api, Some(AUTH)).await;
    let transport =
        build_with_env(&env, &[("HTTP_PROXY", &proxy.url_with("calm:s3cr%40t"))]).unwrap();

    let (response, body) = get(&transport, "http://api.test/v1/items").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "ok");
    let seen = proxy.seen();
    assert_eq!(seen[0].target, "http://api.test/v1/items");
    assert_eq!(header(&seen[0], "proxy-authorization"), Some(AUTH));
    let arrived = &api.requests()[0];
    assert_eq!(arrived.headers["host"], "api.test");
    assert!(arrived.headers.get("proxy-authorization").is_none());
}

#[tokio::test]
async fn lower_case_names_count_and_upper_case_ones_win() {
    let env = ENV.lock().await;
    let api = MockApi::start().await;
    let upper = proxy_to(&api, None).await;
    let lower = proxy_to(&api, None).await;

    let transport = build_with_env(&env, &[("http_proxy", &lower.url())]).unwrap();
    get(&transport, "http://api.test/a").await.unwrap();
    assert_eq!(lower.seen().len(), 1);

    let transport = build_with_env(
        &env,
        &[("http_proxy", &lower.url()), ("HTTP_PROXY", &upper.url())],
    )
    .unwrap();
    get(&transport, "http://api.test/b").await.unwrap();
    assert_eq!(upper.seen().len(), 1);
    assert_eq!(lower.seen().len(), 1);
}

#[tokio::test]
async fn https_proxy_and_all_proxy_tunnel_https_origins() {
    let env = ENV.lock().await;
    let api = MockApi::builder().tls().start().await;
    for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        let proxy = proxy_to(&api, None).await;
        let transport = with_env(&env, &[(name, &proxy.url())], || {
            Transport::builder()
                .add_root_certificate(api.root_certificate_der().unwrap())
                .build()
                .unwrap()
        });
        // The tunnel opens; the mock's certificate is not for `api.test`, so TLS then fails.
        let err = get(&transport, "https://api.test/x").await.unwrap_err();
        let err = err.downcast_ref::<TransportError>().unwrap();
        assert_eq!(err.kind(), TransportErrorKind::Tls, "{name}: {err}");
        let seen = proxy.seen();
        assert_eq!(seen.len(), 1, "{name}");
        assert_eq!(seen[0].method, Method::CONNECT);
        assert_eq!(seen[0].target, "api.test:443");
    }
}

#[tokio::test]
async fn loopback_destinations_do_not_use_a_proxy_from_the_environment() {
    let env = ENV.lock().await;
    let api = MockApi::start().await;
    let proxy = proxy_to(&api, None).await;
    let transport = build_with_env(&env, &[("ALL_PROXY", &proxy.url())]).unwrap();
    get(&transport, &api.url("/ip")).await.unwrap();
    let localhost = format!("http://localhost:{}/name", api.addr().port());
    get(&transport, &localhost).await.unwrap();
    assert_eq!(proxy.connections(), 0);
    assert_eq!(api.request_count(), 2);
}

#[tokio::test]
async fn no_proxy_is_read_with_the_proxies() {
    let env = ENV.lock().await;
    let transport = build_with_env(
        &env,
        &[
            ("HTTP_PROXY", "http://127.0.0.1:3128"),
            ("no_proxy", "internal.test, 10.0.0.0/8"),
        ],
    )
    .unwrap();
    // hyper-util's matcher shows its lists (and never credentials) in `Debug`.
    let shown = format!("{transport:?}");
    assert!(shown.contains("internal.test"), "{shown}");
    assert!(shown.contains("10.0.0.0/8"), "{shown}");
}

#[test]
fn a_bad_variable_fails_the_build_unless_the_environment_is_ignored() {
    let env = ENV.blocking_lock();
    let bad = [("HTTPS_PROXY", "http://calm:hunter2@proxy host:3128")];
    let err = build_with_env(&env, &bad).unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Config);
    let text = err.to_string();
    assert!(text.contains("in HTTPS_PROXY"), "{text}");
    assert!(text.contains("proxy_from_env"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    with_env(&env, &bad, || {
        Transport::builder()
            .proxy_from_env(false)
            .build::<String>()
            .unwrap();
        Transport::builder().no_proxy().build::<String>().unwrap();
        // An explicit proxy replaces the environment whole.
        Transport::builder()
            .proxy("http://127.0.0.1:3128")
            .build::<String>()
            .unwrap();
    });

    // A CGI program reads none of them (`HTTP_PROXY` may come from a request header there).
    let cgi = [bad[0], ("REQUEST_METHOD", "GET")];
    build_with_env(&env, &cgi).unwrap();

    // SOCKS is refused, not skipped: skipping would connect directly against the setting.
    let err = build_with_env(&env, &[("all_proxy", "socks5://127.0.0.1:1080")]).unwrap_err();
    assert!(
        err.to_string().contains("in all_proxy is a SOCKS proxy"),
        "{err}"
    );
}
