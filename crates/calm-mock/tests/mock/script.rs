use bytes::Bytes;
use calm_mock::{MockApi, Reply};
use http::{Method, Request, StatusCode, Version};
use http_body_util::Full;

use crate::support::{client, get, h2_client, header, send};

#[tokio::test]
async fn sequence_is_served_in_order_and_the_last_repeats() {
    let api = MockApi::start().await;
    api.script(
        "/v1/seq",
        [
            Reply::status(503).header("retry-after", "1"),
            Reply::status(429).body("slow down"),
            Reply::ok().body("done"),
        ],
    );
    let client = client();
    let mut seen = Vec::new();
    for _ in 0..5 {
        // NOTE: the query is ignored when matching the script.
        let a = get(&client, &api.url("/v1/seq?page=2")).await;
        seen.push((a.status.as_u16(), a.body));
    }
    assert_eq!(
        seen,
        [
            (503, Bytes::new()),
            (429, Bytes::from("slow down")),
            (200, Bytes::from("done")),
            (200, Bytes::from("done")),
            (200, Bytes::from("done")),
        ]
    );
    assert_eq!(api.request_count(), 5);
}

#[tokio::test]
async fn scripted_headers_are_sent_and_unscripted_paths_answer_ok() {
    let api = MockApi::start().await;
    api.script(
        "/h",
        [Reply::new(StatusCode::ACCEPTED)
            .header("x-a", "1")
            .header("x-a", "2")
            .header("ratelimit", "\"default\";r=0;t=3")],
    );
    let client = client();
    let a = get(&client, &api.url("/h")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let xa: Vec<_> = a.headers.get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(header(&a, "ratelimit"), "\"default\";r=0;t=3");

    let other = get(&client, &api.url("/not/scripted")).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, "ok");
    assert!(!other.headers.contains_key("x-ratelimit-limit"));
}

#[tokio::test]
async fn rescripting_replaces_and_an_empty_script_resets() {
    let api = MockApi::start().await;
    let client = client();
    api.script("/r", [Reply::status(500)]);
    assert_eq!(get(&client, &api.url("/r")).await.status, 500);
    api.script("/r", [Reply::status(204)]);
    assert_eq!(get(&client, &api.url("/r")).await.status, 204);
    api.script("/r", []);
    let a = get(&client, &api.url("/r")).await;
    assert_eq!((a.status.as_u16(), a.body), (200, Bytes::from("ok")));
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let api = MockApi::start().await;
    let client = client();
    let req = Request::builder()
        .method(Method::POST)
        .uri(api.url("/v1/items?x=1"))
        .header("authorization", "Bearer t0k")
        .header("idempotency-key", "k-1")
        .body(Full::new(Bytes::from_static(b"{\"name\":\"a\"}")))
        .unwrap();
    send(&client, req).await.unwrap();
    get(&client, &api.url("/second")).await;

    let log = api.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(api.request_count(), 2);
    let first = &log[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.uri.path(), "/v1/items");
    assert_eq!(first.uri.query(), Some("x=1"));
    assert_eq!(first.version, Version::HTTP_11);
    assert_eq!(first.headers["authorization"], "Bearer t0k");
    assert_eq!(first.headers["idempotency-key"], "k-1");
    assert_eq!(first.body, "{\"name\":\"a\"}");
    assert_eq!(log[1].method, Method::GET);
    assert_eq!(log[1].uri.path(), "/second");
    assert!(log[1].body.is_empty());
    assert!(log[0].at <= log[1].at);
}

#[tokio::test]
async fn connections_are_counted() {
    let api = MockApi::start().await;
    assert_eq!(api.connections(), 0);
    let first = client();
    for _ in 0..5 {
        get(&first, &api.url("/")).await;
    }
    assert_eq!(
        api.connections(),
        1,
        "a pooled client reuses one connection"
    );
    let second = client();
    get(&second, &api.url("/")).await;
    assert_eq!(api.connections(), 2);
    assert_eq!(api.request_count(), 6);
}

#[tokio::test]
async fn http2_prior_knowledge_works() {
    let api = MockApi::start().await;
    api.script("/two", [Reply::status(201).body("h2")]);
    let client = h2_client();
    for _ in 0..3 {
        let a = get(&client, &api.url("/two")).await;
        assert_eq!((a.status.as_u16(), a.version), (201, Version::HTTP_2));
        assert_eq!(a.body, "h2");
    }
    assert_eq!(api.connections(), 1);
    let log = api.requests();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.version == Version::HTTP_2));
    assert_eq!(log[0].uri.path(), "/two");
}

#[tokio::test]
async fn redirect_sends_location() {
    let api = MockApi::start().await;
    api.script("/old", [Reply::redirect(308, "/new")]);
    let a = get(&client(), &api.url("/old")).await;
    assert_eq!(a.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&a, "location"), "/new");
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<MockApi>();
    assert_send_sync::<Reply>();
    assert_send_sync::<calm_mock::MockApiBuilder>();
    assert_send_sync::<calm_mock::RecordedRequest>();
}
