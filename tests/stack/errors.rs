//! `calm::Error`: one line naming the request (method, URL without its query) and what
//! happened, a method for each thing a caller acts on, every underlying error in the chain.

use std::time::Duration;

use calm::{Client, ErrorKind};
use calm_mock::{MockApi, Reply};
use http::StatusCode;
use tokio::time::Instant;

use crate::support::{builder, per_minute, secs, Answer, Backend};

#[tokio::test(start_paused = true)]
async fn a_timeout_names_the_request_its_limit_and_the_attempts() {
    let backend = Backend::new([Answer::status(503), Answer::status(503), Answer::stall()]);
    let client = builder()
        .timeout(secs(2))
        .build_with(backend.clone())
        .unwrap();
    let error = client.get("/items?token=s3cret").send().await.unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(
        error.to_string(),
        "GET http://api.test/v1/items?***: timed out after 2 s (3 attempts)"
    );
    assert_eq!(
        error.url().unwrap(),
        "http://api.test/v1/items?token=s3cret"
    );
    assert_eq!(error.method(), Some(&http::Method::GET));
    assert_eq!(backend.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn attempts_that_time_out_say_how_many_there_were() {
    let backend = Backend::new([Answer::stall(), Answer::stall(), Answer::stall()]);
    let client = builder()
        .attempt_timeout(secs(1))
        .retry(
            calm::RetryPolicy::default()
                .max_retries(2)
                .backoff(calm::Backoff::none()),
        )
        .build_with(backend.clone())
        .unwrap();
    let error = client.get("/items").send().await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.retry_info().unwrap().attempts(), 3);
    assert_eq!(
        error.to_string(),
        "GET http://api.test/v1/items: timed out after 3 s (3 attempts)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_max_wait_refusal_is_rate_limited_with_its_instant() {
    let client = builder()
        .rate_limit(per_minute(1))
        .max_wait(secs(5))
        .build_with(Backend::default())
        .unwrap();
    client.get("/x").send().await.unwrap();
    let asked = Instant::now();
    let error = client.get("/x?page=2").send().await.unwrap_err();
    assert!(error.is_rate_limited());
    assert_eq!(error.rate_limited_until(), Some(asked + secs(60)));
    assert_eq!(
        error.to_string(),
        "GET http://api.test/v1/x?***: rate limited: no place for 60 s: rate limit: the next \
         place is 60s away, more than max_wait (5s)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_pause_past_the_bound_is_rate_limited_naming_the_pause() {
    let backend = Backend::new([Answer::status(429).header("retry-after", "30")]);
    let client = builder()
        .rate_limit(per_minute(600))
        .max_wait(secs(1))
        .no_retries()
        .build_with(backend)
        .unwrap();
    let started = Instant::now();
    client.get("/x").send().await.unwrap();
    let error = client.get("/x").send().await.unwrap_err();
    assert!(error.is_rate_limited());
    assert_eq!(error.rate_limited_until(), Some(started + secs(30)));
    let text = error.to_string();
    assert!(
        text.starts_with("GET http://api.test/v1/x: rate limited: no place for 30 s"),
        "{text}"
    );
    assert!(text.contains("the server paused requests"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_404_checked_with_error_for_status_names_the_status() {
    let client = builder()
        .build_with(Backend::new([Answer::status(404)]))
        .unwrap();
    let response = client.get("/users/7?fields=all").send().await.unwrap();
    let error = response.error_for_status_ref().unwrap_err();
    assert!(error.is_status());
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(
        error.to_string(),
        "GET http://api.test/v1/users/7?***: the server answered 404 Not Found"
    );
    assert!(response.error_for_status().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_path_leaving_the_base_url_is_refused_before_anything_is_sent() {
    let backend = Backend::default();
    let client = builder().build_with(backend.clone()).unwrap();
    let error = client
        .get("https://evil.example/v1/x?k=1")
        .send()
        .await
        .unwrap_err();
    assert!(error.is_refused(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("GET https://evil.example/v1/x?***: refused: it would leave the base URL"),
        "{text}"
    );
    let error = client.delete("../admin").send().await.unwrap_err();
    assert!(error.is_refused(), "{error:?}");
    assert!(
        error.to_string().starts_with("DELETE ../admin: refused"),
        "{error}"
    );
    assert_eq!(backend.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unencoded_query_is_a_builder_error_naming_the_character() {
    let client = builder().build_with(Backend::default()).unwrap();
    let error = client.get("/search?q=red shoes").send().await.unwrap_err();
    assert!(error.is_builder(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("' ' at byte 13, in the query"), "{text}");
    assert!(!text.contains("red"), "{text}");
    // `query` encodes it.
    let request = client
        .get("/search")
        .query(&[("q", "red shoes")])
        .build()
        .unwrap();
    assert_eq!(request.uri(), "http://api.test/v1/search?q=red+shoes");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    // NOTE: a port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(format!("http://127.0.0.1:{port}/v1/"))
        .no_retries()
        .build()
        .unwrap();
    let error = client.get("items?key=s3cret").send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "GET http://127.0.0.1:{port}/v1/items?***: could not connect"
        )),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn a_body_that_is_not_the_json_expected_names_status_and_url() {
    let api = MockApi::start().await;
    api.script(
        "/v1/users/7",
        [Reply::status(404).body(r#"{"message":"Not Found"}"#)],
    );
    let client = Client::builder(api.base_url()).build().unwrap();

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct User {
        id: u64,
    }
    let response = client.get("/v1/users/7?token=s3cret").send().await.unwrap();
    let error = response.json::<User>().await.unwrap_err();
    assert!(error.is_decode());
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "GET {}v1/users/7?***: could not decode the 404 Not Found response's body: \
             missing field `id`",
            api.base_url()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn the_timeout_covers_a_body_that_trickles_in() {
    let api = MockApi::start().await;
    api.script(
        "/v1/export",
        [Reply::ok()
            .body(vec![b'x'; 1000])
            .slow_body(10, Duration::from_millis(100))],
    );
    let client = Client::builder(api.base_url()).build().unwrap();
    let started = Instant::now();
    let response = client
        .get("/v1/export?as=csv")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap();
    let error = response.bytes().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(error.is_timeout() && error.is_body(), "{error:?}");
    // NOTE: the error itself shows the body (1 s in all) was cut; real time, so only the
    // lower bound is asserted.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}v1/export?***: timed out after 300 ms reading the body",
            api.base_url()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_timeout_is_shorter_than_the_clients_never_longer() {
    let backend = Backend::new([Answer::stall(), Answer::stall()]);
    let client = builder().timeout(secs(10)).build_with(backend).unwrap();
    let started = Instant::now();
    let error = client.get("/a").timeout(secs(2)).send().await.unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(started.elapsed(), secs(2));
    let started = Instant::now();
    let error = client.get("/b").timeout(secs(60)).send().await.unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(started.elapsed(), secs(10));
}

#[tokio::test]
async fn chunks_and_a_stream_read_the_body_piece_by_piece() {
    use futures_util::StreamExt;

    let api = MockApi::start().await;
    api.script(
        "/v1/log",
        [
            Reply::ok()
                .body("abcdef")
                .slow_body(3, Duration::from_millis(5)),
            Reply::ok()
                .body("abcdef")
                .slow_body(3, Duration::from_millis(5)),
        ],
    );
    let client = Client::builder(api.base_url()).build().unwrap();
    let mut response = client.get("/v1/log").send().await.unwrap();
    assert_eq!(response.content_length(), Some(6));
    assert_eq!(response.url().unwrap().path(), "/v1/log");
    assert_eq!(response.version(), http::Version::HTTP_11);
    let mut read = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        read.extend_from_slice(&chunk);
    }
    assert_eq!(read, b"abcdef");

    let response = client.get("/v1/log").send().await.unwrap();
    let chunks: Vec<_> = response.bytes_stream().collect().await;
    assert!(chunks.len() >= 2, "{chunks:?}");
    let joined: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(joined, b"abcdef");
}

/// With no `max_wait`, a place past the request's `timeout` is the timeout running out (at
/// once), not a rate-limit refusal the caller never asked for.
#[tokio::test(start_paused = true)]
async fn a_place_past_the_timeout_is_a_timeout_naming_the_wait() {
    let backend = Backend::default();
    let client = builder()
        .rate_limit(per_minute(1))
        .timeout(secs(5))
        .build_with(backend.clone())
        .unwrap();
    client.get("/x").send().await.unwrap();
    let asked = Instant::now();
    let error = client.get("/x").send().await.unwrap_err();
    assert_eq!(asked.elapsed(), secs(0), "at once");
    assert!(error.is_timeout() && !error.is_rate_limited(), "{error:?}");
    assert_eq!(error.rate_limited_until(), Some(asked + secs(60)));
    assert_eq!(
        error.to_string(),
        "GET http://api.test/v1/x: timed out: its place in the rate limiter, 60 s away, lies \
         past its timeout (5 s)"
    );
    let timed_out = error.find_source::<calm::error::TimedOut>().unwrap();
    assert!(timed_out.is_rate_limited());
    assert_eq!(backend.count(), 1);
}
