//! Integration tests through the real `Transport` (hyper-util + rustls) against calm-mock on
//! 127.0.0.1. Real time; assertions on counts and contents, never on durations.
#![allow(missing_docs)]

use bytes::Bytes;
use calm_client::transport::{ResponseBody, Transport, TransportError, TransportErrorKind};
use calm_client::{error::ResolveError, SharedClient, SharedClientLayer, DEFAULT_USER_AGENT};
use calm_mock::{MockApi, Reply};
use http::header;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use std::error::Error as _;
use tower::{BoxError, Layer, ServiceExt};
use tower_http::follow_redirect::RequestUri;

fn transport() -> Transport {
    Transport::builder().build().unwrap()
}

fn session(base: &str) -> SharedClient<Transport> {
    SharedClientLayer::builder(base)
        .bearer_auth("s3cr3t")
        .default_header("x-team", "calm")
        .build()
        .unwrap()
        .layer(transport())
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).unwrap()
}

async fn send<S>(
    client: &S,
    request: Request<Full<Bytes>>,
) -> Result<(Response<()>, Bytes), BoxError>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<ResponseBody>> + Clone,
    S::Error: Into<BoxError>,
{
    let response = client.clone().oneshot(request).await.map_err(Into::into)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((Response::from_parts(parts, ()), body))
}

fn transport_error(err: &BoxError) -> &TransportError {
    err.downcast_ref::<TransportError>()
        .unwrap_or_else(|| panic!("not a TransportError: {err:?}"))
}

#[tokio::test]
async fn paths_land_under_the_base_path() {
    let api = MockApi::start().await;
    let client = session(&api.url("/v1"));

    for uri in ["/users?page=2", "users", "//evil.example/x", "/a//b/"] {
        let (response, body) = send(&client, get(uri)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, "ok");
    }
    let err = send(&client, get("/../admin")).await.unwrap_err();
    assert!(err.downcast_ref::<ResolveError>().is_some(), "{err}");
    let err = send(&client, get("http://127.0.0.1:1/v1/x"))
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<ResolveError>().is_some(), "{err}");

    let seen: Vec<String> = api.requests().iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(
        seen,
        [
            "/v1/users?page=2",
            "/v1/users",
            "/v1/evil.example/x",
            "/v1/a//b/"
        ]
    );
    let host = api.requests()[0].headers[header::HOST].clone();
    assert_eq!(host, api.addr().to_string().as_str());
}

#[tokio::test]
async fn default_headers_arrive_and_the_requests_own_win() {
    let api = MockApi::start().await;
    let client = session(&api.base_url());

    send(&client, get("/defaults")).await.unwrap();
    let request = Request::get("/own")
        .header(header::AUTHORIZATION, "Bearer mine")
        .header(header::USER_AGENT, "own-agent/1")
        .body(Full::default())
        .unwrap();
    send(&client, request).await.unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    let defaults = &requests[0].headers;
    assert_eq!(defaults[header::AUTHORIZATION], "Bearer s3cr3t");
    assert_eq!(defaults[header::USER_AGENT], DEFAULT_USER_AGENT);
    assert_eq!(defaults["x-team"], "calm");
    let own = &requests[1].headers;
    assert_eq!(own[header::AUTHORIZATION], "Bearer mine");
    assert_eq!(own.get_all(header::AUTHORIZATION).iter().count(), 1);
    assert_eq!(own[header::USER_AGENT], "own-agent/1");
    assert_eq!(own["x-team"], "calm");
}

#[tokio::test]
async fn a_post_body_arrives() {
    let api = MockApi::start().await;
    let client = session(&api.url("/v1"));
    let request = Request::post("/items")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
        .unwrap();
    send(&client, request).await.unwrap();
    let requests = api.requests();
    assert_eq!(requests[0].method, http::Method::POST);
    assert_eq!(requests[0].uri.path(), "/v1/items");
    assert_eq!(requests[0].body, "{\"a\":1}");
}

#[tokio::test]
async fn a_redirect_to_another_origin_drops_authorization() {
    let api = MockApi::start().await;
    let other = MockApi::start().await;
    api.script(
        "/v1/elsewhere",
        [Reply::redirect(302, &other.url("/landing"))],
    );
    api.script("/v1/same", [Reply::redirect(307, "/v1/target")]);
    let client = session(&api.url("/v1"));

    let (response, body) = send(&client, get("/elsewhere")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "ok");
    let final_uri = &response.extensions().get::<RequestUri>().unwrap().0;
    assert_eq!(final_uri.to_string(), other.url("/landing"));

    let landed = other.requests();
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].uri.path(), "/landing");
    assert!(
        landed[0].headers.get(header::AUTHORIZATION).is_none(),
        "Authorization crossed origins: {:?}",
        landed[0].headers
    );
    // Non-credential headers still go along.
    assert_eq!(landed[0].headers["x-team"], "calm");
    // Each hop names its own server, once.
    assert_eq!(
        api.requests()[0].headers[header::HOST],
        api.addr().to_string()
    );
    assert_eq!(landed[0].headers.get_all(header::HOST).iter().count(), 1);
    assert_eq!(landed[0].headers[header::HOST], other.addr().to_string());

    // On the same origin, credentials stay.
    let (response, _) = send(&client, get("/same")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let requests = api.requests();
    let target = requests.last().unwrap();
    assert_eq!(target.uri.path(), "/v1/target");
    assert_eq!(target.headers[header::AUTHORIZATION], "Bearer s3cr3t");
}

#[tokio::test]
async fn credentials_dropped_on_leaving_the_origin_stay_dropped() {
    // api → other/hop → other/landing → api/back: once a hop has left the API's origin, no
    // later hop carries its credentials, not even one that stays on the foreign origin (or
    // comes back).
    let api = MockApi::start().await;
    let other = MockApi::start().await;
    api.script("/v1/elsewhere", [Reply::redirect(302, &other.url("/hop"))]);
    other.script("/hop", [Reply::redirect(302, "/landing")]);
    other.script("/landing", [Reply::redirect(302, &api.url("/v1/back"))]);
    let client = session(&api.url("/v1"));

    let (response, body) = send(&client, get("/elsewhere")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "ok");

    let landed = other.requests();
    assert_eq!(landed.len(), 2);
    for request in &landed {
        assert!(
            request.headers.get(header::AUTHORIZATION).is_none(),
            "Authorization reached {}: {:?}",
            request.uri,
            request.headers
        );
        assert_eq!(request.headers["x-team"], "calm");
    }
    let back = api.requests();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].headers[header::AUTHORIZATION], "Bearer s3cr3t");
    assert_eq!(back[1].uri.path(), "/v1/back");
    assert!(back[1].headers.get(header::AUTHORIZATION).is_none());
}

#[tokio::test]
async fn redirects_stop_at_the_limit() {
    let api = MockApi::start().await;
    api.script("/loop", [Reply::redirect(302, "/loop")]);
    let transport: Transport = Transport::builder().max_redirects(2).build().unwrap();
    let (response, _) = send(&transport, get(&api.url("/loop"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(api.request_count(), 3);

    let transport: Transport = Transport::builder().max_redirects(0).build().unwrap();
    let (response, _) = send(&transport, get(&api.url("/loop"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(api.request_count(), 4);
}

#[tokio::test]
async fn twenty_sequential_requests_share_one_connection() {
    let api = MockApi::start().await;
    let client = session(&api.url("/v1"));
    for i in 0..20 {
        let (response, body) = send(&client, get(&format!("/n/{i}"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, "ok");
    }
    assert_eq!(api.request_count(), 20);
    assert_eq!(api.connections(), 1);
}

#[tokio::test]
async fn clones_share_one_pool() {
    let api = MockApi::start().await;
    let transport = transport();
    for _ in 0..5 {
        let clone = transport.clone();
        send(&clone, get(&api.url("/x"))).await.unwrap();
    }
    assert_eq!(api.connections(), 1);
}

#[tokio::test]
async fn https_works_with_the_mocks_root_added() {
    let api = MockApi::builder().tls().start().await;
    let der = api.root_certificate_der().unwrap();
    let transport: Transport = Transport::builder()
        .add_root_certificate(der.clone())
        .build()
        .unwrap();
    let client = SharedClientLayer::new(api.url("/v1"))
        .unwrap()
        .layer(transport);
    let (response, body) = send(&client, get("/secure")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "ok");
    // ALPN picked HTTP/2.
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(api.requests()[0].uri.path(), "/v1/secure");

    // Only the added root, built-in roots off.
    let only_ours: Transport = Transport::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(der)
        .build()
        .unwrap();
    let (response, _) = send(&only_ours, get(&api.url("/again"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 2);
}

#[tokio::test]
async fn https_without_the_root_fails_with_a_clear_tls_error() {
    let api = MockApi::builder().tls().start().await;
    let client = SharedClientLayer::new(api.url("/v1"))
        .unwrap()
        .layer(transport());
    let err = send(&client, get("/secure")).await.unwrap_err();
    let err = transport_error(&err);
    assert_eq!(err.kind(), TransportErrorKind::Tls);
    assert!(err.is_connect(), "a failed handshake means never sent");
    let message = err.to_string();
    assert!(
        message.starts_with("TLS handshake with https://127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert_eq!(err.target(), Some(api.base_url().trim_end_matches('/')));
    assert_eq!(api.request_count(), 0);
}

#[tokio::test]
async fn a_connection_closed_by_the_server_is_a_typed_error() {
    let api = MockApi::start().await;
    api.script("/v1/hangup", [Reply::close()]);
    let client = session(&api.url("/v1"));
    let err = send(&client, get("/hangup")).await.unwrap_err();
    let err = transport_error(&err);
    assert_eq!(err.kind(), TransportErrorKind::ConnectionClosed);
    assert!(!err.is_connect(), "the request was sent");
    assert!(
        err.to_string()
            .contains("closed before a complete response"),
        "{err}"
    );
    // The cause chain is kept: hyper-util's error, then hyper's.
    let hyper_util_error = err.source().unwrap();
    assert!(hyper_util_error.is::<hyper_util::client::legacy::Error>());
    assert!(hyper_util_error.source().unwrap().is::<hyper::Error>());
    assert_eq!(api.request_count(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_kind_connect() {
    // A port nothing listens on: bind, note the port, close.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let client = session(&format!("http://{addr}/v1"));
    let err = send(&client, get("/x")).await.unwrap_err();
    let err = transport_error(&err);
    assert_eq!(err.kind(), TransportErrorKind::Connect);
    assert!(err.is_connect());
    assert!(
        err.to_string()
            .starts_with(&format!("could not connect to http://{addr}")),
        "{err}"
    );
    let mut cause = err.source();
    let mut refused = false;
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        cause = e.source();
    }
    assert!(
        refused,
        "no ConnectionRefused io::Error in the chain of {err:?}"
    );
}

#[tokio::test]
async fn https_only_refuses_plain_http_before_connecting() {
    let api = MockApi::start().await;
    let transport: Transport = Transport::builder().https_only(true).build().unwrap();
    let err = transport.oneshot(get(&api.url("/x"))).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Connect);
    assert_eq!(api.connections(), 0);
}

#[test]
fn configuration_mistakes_surface_at_build() {
    let err = Transport::builder()
        .add_root_certificate(b"not a certificate".to_vec())
        .build::<Full<Bytes>>()
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Config);
    assert!(err.to_string().contains("root certificate #1"), "{err}");
    assert!(err.source().is_some());

    let err = Transport::builder()
        .tls_built_in_root_certs(false)
        .build::<Full<Bytes>>()
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Config);
    assert!(err.to_string().contains("no root certificates"), "{err}");
}

#[test]
fn transport_and_its_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let transport = transport();
    send_sync(&transport);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let future = transport.clone().oneshot(get("http://127.0.0.1:9/"));
    send_sync(&future);
    let mut transport = transport;
    let future = tower::Service::call(&mut transport, get("http://127.0.0.1:9/"));
    send_sync(&future);
    // Without redirects to follow too.
    let mut direct = Transport::builder().max_redirects(0).build().unwrap();
    send_sync(&tower::Service::call(
        &mut direct,
        get("http://127.0.0.1:9/"),
    ));
}

#[tokio::test]
async fn a_sensitive_default_header_does_not_follow_a_redirect_to_another_origin() {
    let api = MockApi::start().await;
    let other = MockApi::start().await;
    api.script("/v1/moved", [Reply::redirect(302, &other.url("/landing"))]);
    let mut key = http::HeaderValue::from_static("k-123");
    key.set_sensitive(true);
    let client = SharedClientLayer::builder(api.url("/v1").as_str())
        .default_header("x-api-key", key)
        .default_header("accept", "application/json")
        .build()
        .unwrap()
        .layer(transport());

    let (response, _) = send(&client, get("/moved")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.requests()[0].headers["x-api-key"], "k-123");
    let landed = other.requests();
    assert_eq!(landed.len(), 1);
    assert!(
        landed[0].headers.get("x-api-key").is_none(),
        "a sensitive header crossed origins: {:?}",
        landed[0].headers
    );
    assert_eq!(landed[0].headers["accept"], "application/json");
}
