//! Proxies through the real `Transport`, against calm-mock and a loopback proxy written here
//! (`support`): absolute-form forwarding for `http` origins, `CONNECT` tunnels for `https`
//! ones, bypass lists, and credentials that reach the proxy and never an origin.
//!
//! Every proxy here is explicit: the environment is not read (`proxy_from_env` in the
//! `proxy_env` test binary).
#![allow(missing_docs)]

mod support;

use calm_client::transport::{Transport, TransportError, TransportErrorKind};
use calm_mock::{MockApi, Reply};
use http::{Method, StatusCode, Version};
use std::error::Error as _;
use support::{get, header, LoopbackProxy, Options};

/// `Basic base64("calm:s3cr@t")`: the proxy credentials of these tests.
const AUTH: &str = "Basic Y2FsbTpzM2NyQHQ=";
/// The same credentials in a URL (the `@` percent-encoded).
const USERINFO: &str = "calm:s3cr%40t";

fn through(proxy: &str) -> Transport {
    Transport::builder().proxy(proxy).build().unwrap()
}

fn transport_error(err: &tower::BoxError) -> &TransportError {
    err.downcast_ref::<TransportError>()
        .unwrap_or_else(|| panic!("not a TransportError: {err:?}"))
}

#[tokio::test]
async fn an_http_origin_is_asked_of_the_proxy_in_absolute_form() {
    let api = MockApi::start().await;
    api.script("/v1/items", [Reply::ok().body("[1,2]")]);
    let proxy = LoopbackProxy::start().await;
    let transport = through(&proxy.url());

    let (response, body) = get(&transport, &api.url("/v1/items?page=2")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "[1,2]");

    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].target, api.url("/v1/items?page=2"));
    assert_eq!(
        header(&seen[0], "host"),
        Some(api.addr().to_string().as_str())
    );
    // No credentials configured, none sent.
    assert_eq!(header(&seen[0], "proxy-authorization"), None);
    let arrived = api.requests();
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].uri, "/v1/items?page=2");

    // The connection to the proxy is pooled like any other.
    get(&transport, &api.url("/v1/items")).await.unwrap();
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test]
async fn proxy_credentials_go_to_the_proxy_and_not_to_the_origin() {
    let api = MockApi::start().await;
    let proxy = LoopbackProxy::with(Options {
        require: Some(AUTH),
        ..Options::default()
    })
    .await;

    // Without credentials the proxy answers 407, a response like any other.
    let (response, _) = get(&through(&proxy.url()), &api.url("/x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(api.request_count(), 0);

    let transport = through(&proxy.url_with(USERINFO));
    let (response, body) = get(&transport, &api.url("/x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "ok");
    assert_eq!(header(&proxy.seen()[1], "proxy-authorization"), Some(AUTH));
    assert!(api.requests()[0]
        .headers
        .get("proxy-authorization")
        .is_none());
    assert!(api.requests()[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn an_https_origin_is_reached_through_a_connect_tunnel() {
    let api = MockApi::builder().tls().start().await;
    let proxy = LoopbackProxy::with(Options {
        require: Some(AUTH),
        ..Options::default()
    })
    .await;
    let transport: Transport = Transport::builder()
        .add_root_certificate(api.root_certificate_der().unwrap())
        .proxy(proxy.url_with(USERINFO))
        .build()
        .unwrap();

    for _ in 0..2 {
        let (response, body) = get(&transport, &api.url("/secure")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, "ok");
        // TLS to the origin inside the tunnel: ALPN picked HTTP/2 with the mock itself.
        assert_eq!(response.version(), Version::HTTP_2);
    }

    // One tunnel, reused; the CONNECT alone carried the credentials.
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, Method::CONNECT);
    assert_eq!(seen[0].target, api.addr().to_string());
    assert_eq!(header(&seen[0], "proxy-authorization"), Some(AUTH));
    assert_eq!(api.connections(), 1);
    let arrived = api.requests();
    assert_eq!(arrived.len(), 2);
    for request in &arrived {
        assert!(request.headers.get("proxy-authorization").is_none());
    }
}

#[tokio::test]
async fn a_refused_tunnel_is_a_connect_error_that_names_the_proxy() {
    let api = MockApi::builder().tls().start().await;
    let proxy = LoopbackProxy::with(Options {
        require: Some(AUTH),
        ..Options::default()
    })
    .await;
    let transport: Transport = Transport::builder()
        .add_root_certificate(api.root_certificate_der().unwrap())
        .proxy(proxy.url_with("calm:wrong"))
        .build()
        .unwrap();

    let err = get(&transport, &api.url("/secure")).await.unwrap_err();
    let err = transport_error(&err);
    assert_eq!(err.kind(), TransportErrorKind::Connect);
    assert!(err.is_connect(), "never sent");
    assert_eq!(err.proxy(), Some(proxy.url().as_str()));
    let text = err.to_string();
    assert!(
        text.contains(&format!("(through the proxy {})", proxy.url())),
        "{text}"
    );
    assert!(text.contains("proxy authorization required"), "{text}");
    assert!(!text.contains("wrong"), "{text}");
    assert_eq!(api.request_count(), 0);
}

#[tokio::test]
async fn a_proxy_that_is_down_is_a_connect_error_that_names_it() {
    let api = MockApi::start().await;
    // A port nothing listens on: bind one, then let it go.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = format!("http://{closed}");
    for url in [api.url("/x"), api.url("/x").replace("http://", "https://")] {
        let err = get(&through(&proxy), &url).await.unwrap_err();
        let err = transport_error(&err);
        assert_eq!(err.kind(), TransportErrorKind::Connect, "{url}: {err}");
        assert_eq!(err.proxy(), Some(proxy.as_str()), "{url}");
    }
    assert_eq!(api.request_count(), 0);
}

#[tokio::test]
async fn bypassed_destinations_go_direct_without_credentials() {
    let api = MockApi::start().await;
    let proxy = LoopbackProxy::start().await;
    let transport: Transport = Transport::builder()
        .proxy(proxy.url_with(USERINFO))
        .proxy_bypass("example.com, 127.0.0.0/8")
        .build()
        .unwrap();

    let (response, _) = get(&transport, &api.url("/direct")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(proxy.seen().is_empty());
    assert_eq!(proxy.connections(), 0);
    assert!(api.requests()[0]
        .headers
        .get("proxy-authorization")
        .is_none());

    // `no_proxy` forgets the proxy set before.
    let direct: Transport = Transport::builder()
        .proxy(proxy.url())
        .no_proxy()
        .build()
        .unwrap();
    get(&direct, &api.url("/direct")).await.unwrap();
    assert_eq!(proxy.connections(), 0);
    assert_eq!(api.request_count(), 2);
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_off_the_proxy() {
    // `first` is reached through the proxy; it redirects to `second` under another name
    // (`localhost`), which the bypass list sends direct, and to `secure` over https, which
    // goes through a tunnel.
    let first = MockApi::start().await;
    let second = MockApi::start().await;
    let secure = MockApi::builder().tls().start().await;
    let second_url = format!("http://localhost:{}/landed", second.addr().port());
    first.script("/to-direct", [Reply::redirect(302, &second_url)]);
    first.script("/to-tunnel", [Reply::redirect(307, &secure.url("/landed"))]);
    let proxy = LoopbackProxy::start().await;
    let transport: Transport = Transport::builder()
        .add_root_certificate(secure.root_certificate_der().unwrap())
        .proxy(proxy.url_with(USERINFO))
        .proxy_bypass("localhost")
        .build()
        .unwrap();

    let (response, _) = get(&transport, &first.url("/to-direct")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = get(&transport, &first.url("/to-tunnel")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let seen = proxy.seen();
    let summary: Vec<_> = seen
        .iter()
        .map(|s| (s.method.clone(), s.target.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (Method::GET, first.url("/to-direct")),
            (Method::GET, first.url("/to-tunnel")),
            (Method::CONNECT, secure.addr().to_string()),
        ]
    );
    for s in &seen {
        assert_eq!(header(s, "proxy-authorization"), Some(AUTH), "{s:?}");
    }
    for api in [&second, &secure] {
        let arrived = api.requests();
        assert_eq!(arrived.len(), 1);
        assert_eq!(arrived[0].uri.path(), "/landed");
        assert!(arrived[0].headers.get("proxy-authorization").is_none());
    }
}

#[tokio::test]
async fn an_https_proxy_is_spoken_to_over_tls() {
    let plain = MockApi::start().await;
    let secure = MockApi::builder().tls().start().await;
    let proxy = LoopbackProxy::with(Options {
        require: Some(AUTH),
        tls: true,
        ..Options::default()
    })
    .await;
    assert!(proxy.url().starts_with("https://"));
    let transport: Transport = Transport::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(proxy.cert().unwrap())
        .add_root_certificate(secure.root_certificate_der().unwrap())
        .proxy(proxy.url_with(USERINFO))
        .build()
        .unwrap();

    // Absolute form inside TLS to the proxy, and TLS to the origin inside TLS to the proxy.
    let (response, body) = get(&transport, &plain.url("/a")).await.unwrap();
    assert_eq!((response.status(), &body[..]), (StatusCode::OK, &b"ok"[..]));
    let (response, body) = get(&transport, &secure.url("/b")).await.unwrap();
    assert_eq!((response.status(), &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(response.version(), Version::HTTP_2);

    let methods: Vec<_> = proxy.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, [Method::GET, Method::CONNECT]);
    assert!(plain.requests()[0]
        .headers
        .get("proxy-authorization")
        .is_none());
    assert!(secure.requests()[0]
        .headers
        .get("proxy-authorization")
        .is_none());
}

#[cfg(feature = "zstd")]
#[tokio::test]
async fn responses_through_the_proxy_are_decoded_too() {
    let api = MockApi::start().await;
    api.script(
        "/z",
        [Reply::ok()
            .body("squeezed")
            .encoded(calm_mock::Encoding::Zstd)],
    );
    let proxy = LoopbackProxy::start().await;
    let (response, body) = get(&through(&proxy.url()), &api.url("/z")).await.unwrap();
    assert_eq!(body, "squeezed");
    assert!(response.headers().get("content-encoding").is_none());
    assert!(header(&proxy.seen()[0], "accept-encoding").is_some_and(|a| a.contains("zstd")));
}

#[test]
fn an_unusable_proxy_url_is_a_config_error_that_keeps_the_password_out() {
    for (url, problem) in [
        ("http://calm:hunter2@proxy host:3128", "is not a valid URL"),
        ("http://calm:hunter2@[::1", "is not a valid URL"),
        ("socks5h://calm:hunter2@127.0.0.1:1080", "SOCKS"),
        ("ftp://calm:hunter2@127.0.0.1", "unsupported scheme"),
        ("http://calm:hunter2@127.0.0.1:3128/proxy.pac", "has a path"),
    ] {
        let err = Transport::builder()
            .proxy(url)
            .build::<String>()
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Config, "{url}");
        let text = err.to_string();
        assert!(
            text.starts_with("invalid transport configuration: the proxy URL given to `proxy`"),
            "{text}"
        );
        assert!(text.contains(problem), "{url}: {text}");
        let mut chain = format!("{err:?}");
        let mut source = err.source();
        while let Some(e) = source {
            chain.push_str(&e.to_string());
            source = e.source();
        }
        assert!(!chain.contains("hunter2"), "{chain}");
    }

    // Each setter names itself.
    let err = Transport::builder()
        .https_proxy("gopher://proxy")
        .build::<String>()
        .unwrap_err();
    assert!(err.to_string().contains("given to `https_proxy`"), "{err}");

    // The builder's `Debug` hides the password too.
    let builder = Transport::builder().http_proxy("http://calm:hunter2@127.0.0.1:3128");
    assert!(!format!("{builder:?}").contains("hunter2"));
    let transport: Transport = builder.build().unwrap();
    let shown = format!("{transport:?}");
    assert!(shown.contains("127.0.0.1:3128"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
