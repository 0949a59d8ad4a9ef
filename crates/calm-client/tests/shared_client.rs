//! Unit tests of `SharedClientLayer` / `SharedClient` with tower-test's mock service.
#![allow(missing_docs)]

use calm_client::error::{BuildErrorKind, InvalidBaseUrlKind, ResolveError, ResolveErrorKind};
use calm_client::{BaseUrl, SharedClient, SharedClientLayer, DEFAULT_USER_AGENT};
use http::header::{self, HeaderValue};
use http::{Request, Response};
use std::error::Error as _;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok, task};
use tower::{BoxError, Layer, ServiceExt};
use tower_test::mock;

type Req = Request<&'static str>;
type Mock = mock::Mock<Req, Response<&'static str>>;
type Handle = mock::Handle<Req, Response<&'static str>>;

fn spawn(layer: SharedClientLayer) -> (mock::Spawn<SharedClient<Mock>>, Handle) {
    mock::spawn_layer(layer)
}

fn layer() -> SharedClientLayer {
    SharedClientLayer::builder("https://api.example.com/v1")
        .bearer_auth("t0k3n")
        .default_header("accept", "application/json")
        .default_header("x-client", "calm-tests")
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn rewrites_the_uri_and_adds_default_headers() {
    let (mut service, mut handle) = spawn(layer());
    assert_ready_ok!(service.poll_ready());
    let mut response = task::spawn(service.call(Request::get("/users?page=2").body("b").unwrap()));

    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.uri(), "https://api.example.com/v1/users?page=2");
    assert_eq!(request.headers()[header::AUTHORIZATION], "Bearer t0k3n");
    assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
    assert_eq!(request.headers()[header::ACCEPT], "application/json");
    assert_eq!(request.headers()["x-client"], "calm-tests");
    assert_eq!(request.headers()[header::USER_AGENT], DEFAULT_USER_AGENT);
    assert_eq!(request.headers().len(), 4);
    assert_eq!(*request.body(), "b");
    assert_pending!(response.poll());

    send.send_response(Response::new("done"));
    let response = assert_ready_ok!(response.poll());
    assert_eq!(*response.body(), "done");
}

#[tokio::test(start_paused = true)]
async fn default_user_agent_names_the_crate_version() {
    assert_eq!(
        DEFAULT_USER_AGENT,
        format!("calm/{}", env!("CARGO_PKG_VERSION"))
    );
    let layer = SharedClientLayer::new("http://127.0.0.1:1").unwrap();
    assert_eq!(layer.default_headers().len(), 1);
    assert_eq!(
        layer.default_headers()[header::USER_AGENT],
        DEFAULT_USER_AGENT
    );
}

#[tokio::test(start_paused = true)]
async fn the_requests_own_headers_win() {
    let (mut service, mut handle) = spawn(layer());
    assert_ready_ok!(service.poll_ready());
    let _response = service.call(
        Request::get("/x")
            .header(header::AUTHORIZATION, "Bearer mine")
            .header(header::USER_AGENT, "mine/1")
            .header(header::ACCEPT, "text/plain")
            .header(header::ACCEPT, "text/html")
            .body("")
            .unwrap(),
    );
    let (request, _send) = handle.next_request().await.unwrap();
    let headers = request.headers();
    assert_eq!(headers[header::AUTHORIZATION], "Bearer mine");
    assert!(!headers[header::AUTHORIZATION].is_sensitive());
    assert_eq!(headers[header::USER_AGENT], "mine/1");
    let accept: Vec<_> = headers.get_all(header::ACCEPT).iter().collect();
    assert_eq!(accept, ["text/plain", "text/html"]);
    // The defaults the request did not set are still added.
    assert_eq!(headers["x-client"], "calm-tests");
    assert_eq!(headers.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn refusals_never_reach_the_inner_service() {
    let (mut service, mut handle) = spawn(layer());
    let refused = [
        ("https://evil.example/v1/x", ResolveErrorKind::ForeignOrigin),
        (
            "http://api.example.com/v1/x",
            ResolveErrorKind::ForeignOrigin,
        ),
        (
            "https://api.example.com/v2/x",
            ResolveErrorKind::OutsideBasePath,
        ),
        ("/../admin", ResolveErrorKind::DotSegment),
        ("/v1/../v2", ResolveErrorKind::DotSegment),
        ("/%2E%2e/admin", ResolveErrorKind::DotSegment),
        (
            "https://user@api.example.com/v1/x",
            ResolveErrorKind::UserInfo,
        ),
    ];
    for (uri, kind) in refused {
        assert_ready_ok!(service.poll_ready());
        let mut response = task::spawn(service.call(Request::get(uri).body("").unwrap()));
        let err: BoxError = assert_ready_err!(response.poll());
        let err = err
            .downcast_ref::<ResolveError>()
            .unwrap_or_else(|| panic!("{uri}: not a ResolveError: {err}"));
        assert_eq!(err.kind(), kind, "{uri}");
        assert_pending!(handle.poll_request(), "{uri} reached the inner service");
    }
    // The service is still usable after refusals.
    assert_ready_ok!(service.poll_ready());
    let _response = service.call(Request::get("/ok").body("").unwrap());
    let (request, _send) = handle.next_request().await.unwrap();
    assert_eq!(request.uri(), "https://api.example.com/v1/ok");
}

#[tokio::test(start_paused = true)]
async fn readiness_is_the_inner_services() {
    let (mut service, mut handle) = spawn(layer());
    handle.allow(0);
    assert_pending!(service.poll_ready());
    handle.allow(1);
    assert!(service.is_woken());
    assert_ready_ok!(service.poll_ready());
    let _response = service.call(Request::get("/a").body("").unwrap());
    assert_pending!(service.poll_ready());
    let (request, _send) = handle.next_request().await.unwrap();
    assert_eq!(request.uri().path(), "/v1/a");

    handle.send_error("inner not ready");
    handle.allow(1);
    let err = assert_ready_err!(service.poll_ready());
    assert_eq!(err.to_string(), "inner not ready");
}

#[tokio::test(start_paused = true)]
async fn inner_errors_are_boxed_unchanged() {
    let (mut service, mut handle) = spawn(layer());
    assert_ready_ok!(service.poll_ready());
    let mut response = task::spawn(service.call(Request::get("/a").body("").unwrap()));
    let (_request, send) = handle.next_request().await.unwrap();
    send.send_error(std::io::Error::other("backend down"));
    let err = assert_ready_err!(response.poll());
    assert!(err.downcast_ref::<ResolveError>().is_none());
    assert_eq!(err.to_string(), "backend down");
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_header_map_and_base() {
    let layer = layer();
    let copy = layer.clone();
    assert!(std::ptr::eq(
        layer.default_headers(),
        copy.default_headers()
    ));

    let (service, _handle) = mock::pair::<Req, Response<&'static str>>();
    let a = layer.layer(service);
    let b = a.clone();
    let c = copy.layer(a.get_ref().clone());
    assert!(std::ptr::eq(a.default_headers(), b.default_headers()));
    assert!(std::ptr::eq(a.default_headers(), c.default_headers()));
    assert!(std::ptr::eq(a.base_url().as_str(), c.base_url().as_str()));
    assert!(std::ptr::eq(layer.default_headers(), a.default_headers()));
}

#[tokio::test(start_paused = true)]
async fn works_in_a_service_builder_with_clones_in_tasks() {
    let backend = tower::service_fn(|req: Request<()>| async move {
        Ok::<_, std::convert::Infallible>(Response::new(req.uri().to_string()))
    });
    let client = tower::ServiceBuilder::new()
        .layer(SharedClientLayer::new("http://127.0.0.1:9/base").unwrap())
        .service(backend);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let request = Request::get(format!("/item/{i}")).body(()).unwrap();
            client.oneshot(request).await.unwrap().into_body()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.unwrap(),
            format!("http://127.0.0.1:9/base/item/{i}")
        );
    }
}

#[test]
fn basic_auth_is_encoded_and_sensitive() {
    let layer = SharedClientLayer::builder("https://h")
        .basic_auth("Aladdin", Some("open sesame"))
        .build()
        .unwrap();
    let value = &layer.default_headers()[header::AUTHORIZATION];
    assert_eq!(value, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert!(value.is_sensitive());
    assert!(!format!("{layer:?}").contains("QWxhZGRp"), "{layer:?}");

    let layer = SharedClientLayer::builder("https://h")
        .basic_auth("user", None::<&str>)
        .build()
        .unwrap();
    assert_eq!(
        layer.default_headers()[header::AUTHORIZATION],
        "Basic dXNlcjo="
    );

    // The last credentials set win.
    let layer = SharedClientLayer::builder("https://h")
        .basic_auth("user", Some("pw"))
        .bearer_auth("tok")
        .build()
        .unwrap();
    assert_eq!(layer.default_headers()[header::AUTHORIZATION], "Bearer tok");
}

#[test]
fn credential_headers_are_sensitive_whichever_setter_adds_them() {
    let layer = SharedClientLayer::builder("https://h")
        .default_header("authorization", "Token abc")
        .default_header("cookie", "session=1")
        .default_header("x-plain", "visible")
        .user_agent("my-app/2")
        .build()
        .unwrap();
    let headers = layer.default_headers();
    assert!(headers[header::AUTHORIZATION].is_sensitive());
    assert!(headers[header::COOKIE].is_sensitive());
    assert!(!headers["x-plain"].is_sensitive());
    assert_eq!(headers[header::USER_AGENT], "my-app/2");

    let mut key = HeaderValue::from_static("k");
    key.set_sensitive(true);
    let layer = SharedClientLayer::builder("https://h")
        .default_header("x-api-key", key)
        .build()
        .unwrap();
    assert!(layer.default_headers()["x-api-key"].is_sensitive());
}

#[test]
fn every_mistake_surfaces_at_build() {
    let cases = [
        (
            SharedClientLayer::builder("ftp://h").build(),
            BuildErrorKind::InvalidBaseUrl,
            "ftp",
        ),
        (
            SharedClientLayer::builder("https://h")
                .default_header("bad name", "v")
                .build(),
            BuildErrorKind::InvalidHeaderName,
            "#1",
        ),
        (
            SharedClientLayer::builder("https://h")
                .default_header("x-a", "ok")
                .default_header("x-b", "line\nbreak")
                .build(),
            BuildErrorKind::InvalidHeaderValue,
            "x-b",
        ),
        (
            SharedClientLayer::builder("https://h")
                .bearer_auth("a\r\nb")
                .build(),
            BuildErrorKind::InvalidHeaderValue,
            "bearer token",
        ),
        (
            SharedClientLayer::builder("https://h")
                .user_agent("x\0")
                .build(),
            BuildErrorKind::InvalidHeaderValue,
            "user agent",
        ),
        // The first mistake is reported.
        (
            SharedClientLayer::builder("https://h")
                .default_header("x-v", "bad\n")
                .default_header("bad name", "v")
                .build(),
            BuildErrorKind::InvalidHeaderValue,
            "x-v",
        ),
    ];
    for (result, kind, mentions) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.to_string().contains(mentions), "{err}");
        assert!(err.source().is_some(), "{err}: no source");
    }

    let err = SharedClientLayer::builder("https://h/?q=1")
        .build()
        .unwrap_err();
    let source = err
        .source()
        .unwrap()
        .downcast_ref::<calm_client::InvalidBaseUrl>();
    assert_eq!(source.unwrap().kind(), InvalidBaseUrlKind::Query);

    // Secret values are never shown.
    let err = SharedClientLayer::builder("https://h")
        .default_header("x-api-key", "SECRET\n")
        .build()
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("SECRET"));

    let err = SharedClientLayer::new("not a url").unwrap_err();
    assert_eq!(err.kind(), InvalidBaseUrlKind::InvalidCharacter);
}

#[test]
fn layer_accepts_every_base_url_form() {
    let base = BaseUrl::parse("https://h/v1").unwrap();
    let s = String::from("https://h/v1");
    for layer in [
        SharedClientLayer::new("https://h/v1").unwrap(),
        SharedClientLayer::new(s.clone()).unwrap(),
        SharedClientLayer::new(&s).unwrap(),
        SharedClientLayer::new(&base).unwrap(),
        SharedClientLayer::new(base.clone()).unwrap(),
    ] {
        assert_eq!(layer.base_url(), &base);
    }
}

#[tokio::test(start_paused = true)]
async fn services_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&layer());
    let (mut service, _handle) = spawn(layer());
    send_sync(service.get_ref());
    assert_ready_ok!(service.poll_ready());
    let future = service.call(Request::get("/x").body("").unwrap());
    send_sync(&future);
}
