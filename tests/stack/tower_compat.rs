//! `Client` as a plain `tower::Service`, under layers of the user's own.

use bytes::Bytes;
use calm::{Body, Client, RetryInfo};
use http::header::{HeaderName, HeaderValue};
use http::Request;
use tower::util::{BoxCloneSyncService, MapRequestLayer};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;

use crate::support::{builder, Answer, Backend};

#[tokio::test(start_paused = true)]
async fn client_works_under_a_users_own_layers_in_a_service_builder() {
    let backend = Backend::new([Answer::status(503), Answer::ok()]);
    let client = builder()
        .default_header("x-api-key", "k-1")
        .build_with(backend.clone())
        .unwrap();

    let mut svc = ServiceBuilder::new()
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("x-source"),
            HeaderValue::from_static("tests"),
        ))
        .layer(MapRequestLayer::new(|mut request: Request<Body>| {
            request
                .headers_mut()
                .insert("x-mapped", HeaderValue::from_static("yes"));
            request
        }))
        .service(client.clone());

    let request = Request::get("/items?page=1").body(Body::empty()).unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.extensions().get::<RetryInfo>().unwrap().attempts(),
        2
    );

    let arrivals = backend.arrivals();
    assert_eq!(arrivals.len(), 2);
    for arrival in &arrivals {
        assert_eq!(arrival.uri, "http://api.test/v1/items?page=1");
        assert_eq!(arrival.headers["x-source"], "tests");
        assert_eq!(arrival.headers["x-mapped"], "yes");
        assert_eq!(arrival.headers["x-api-key"], "k-1");
    }
    assert_eq!(client.stats().requests, 1);
}

#[tokio::test(start_paused = true)]
async fn client_takes_any_body_that_converts_into_a_calm_body() {
    let backend = Backend::default();
    let client = builder().build_with(backend.clone()).unwrap();

    let put = |uri: &str| Request::put(uri);
    client
        .clone()
        .oneshot(put("/a").body(String::from("string")).unwrap())
        .await
        .unwrap();
    client
        .clone()
        .oneshot(put("/b").body("static").unwrap())
        .await
        .unwrap();
    client
        .clone()
        .oneshot(put("/c").body(Bytes::from_static(b"bytes")).unwrap())
        .await
        .unwrap();
    client
        .clone()
        .oneshot(put("/d").body(b"vec".to_vec()).unwrap())
        .await
        .unwrap();
    client
        .clone()
        .oneshot(put("/e").body(()).unwrap())
        .await
        .unwrap();

    let bodies: Vec<_> = backend.arrivals().into_iter().map(|a| a.body).collect();
    assert_eq!(bodies, ["string", "static", "bytes", "vec", ""]);
}

#[tokio::test(start_paused = true)]
async fn client_erases_into_a_boxed_clone_sync_service() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>(_: &T) {}

    let backend = Backend::default();
    let client: Client = builder().build_with(backend.clone()).unwrap();
    assert_shareable(&client);

    let boxed: BoxCloneSyncService<Request<Body>, http::Response<Body>, BoxError> =
        BoxCloneSyncService::new(client);
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let svc = boxed.clone();
            tokio::spawn(async move {
                let request = Request::get(format!("/t/{i}")).body(Body::empty()).unwrap();
                svc.oneshot(request).await.map(|r| r.status())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 200);
    }
    assert_eq!(backend.count(), 4);
}
