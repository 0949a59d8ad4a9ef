//! Response decompression through the real `Transport`, against calm-mock's encoded replies:
//! `Accept-Encoding` sent, every encoding decoded, the headers of a decoded body fixed,
//! decoding off, and the two ways a body fails (`BodyError`).
#![allow(missing_docs)]
#![cfg(all(
    feature = "gzip",
    feature = "brotli",
    feature = "zstd",
    feature = "deflate"
))]

use bytes::Bytes;
use calm_client::transport::{BodyError, BodyErrorKind, ResponseBody, Transport};
use calm_mock::{Encoding, MockApi, Reply};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use std::error::Error as _;
use std::time::Duration;
use tower::{BoxError, ServiceExt};

const LIMIT: Duration = Duration::from_secs(10);

fn json() -> Bytes {
    Bytes::from(br#"{"id":42,"name":"calm","tags":["a","b","c"]}"#.repeat(50))
}

async fn head(transport: &Transport, req: Request<Full<Bytes>>) -> Response<ResponseBody> {
    tokio::time::timeout(LIMIT, transport.clone().oneshot(req))
        .await
        .expect("answered in time")
        .expect("a response")
}

async fn fetch(transport: &Transport, req: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
    let (parts, body) = head(transport, req).await.into_parts();
    let body = tokio::time::timeout(LIMIT, body.collect())
        .await
        .expect("the body arrived in time")
        .expect("the body arrived whole")
        .to_bytes();
    (Response::from_parts(parts, ()), body)
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

/// Reads `body` to its error.
async fn body_error(body: ResponseBody) -> BodyError {
    let err = tokio::time::timeout(LIMIT, body.collect())
        .await
        .expect("the body ended in time")
        .expect_err("the body fails");
    err
}

#[tokio::test]
async fn every_encoding_is_asked_for_and_decoded() {
    let api = MockApi::start().await;
    let transport: Transport = Transport::builder().build().unwrap();
    for encoding in Encoding::ALL {
        api.script("/items", [Reply::ok().body(json()).encoded(encoding)]);
        let (response, body) = fetch(&transport, get(&api.url("/items"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, json(), "{encoding:?}");
        // The headers described the compressed bytes; they are gone with them.
        assert!(response.headers().get("content-encoding").is_none());
        assert!(response.headers().get("content-length").is_none());
    }
    for request in api.requests() {
        let accept = request.headers["accept-encoding"].to_str().unwrap();
        let mut tokens: Vec<_> = accept.split(',').map(str::trim).collect();
        tokens.sort_unstable();
        assert_eq!(tokens, ["br", "deflate", "gzip", "zstd"], "{accept}");
    }
}

#[tokio::test]
async fn a_server_that_negotiates_compresses_and_the_body_is_decoded() {
    let api = MockApi::start().await;
    api.script(
        "/n",
        [Reply::ok()
            .body(json())
            .encoded_if_accepted(Encoding::Brotli)],
    );
    let transport: Transport = Transport::builder().build().unwrap();
    let (response, body) = fetch(&transport, get(&api.url("/n"))).await;
    assert_eq!(body, json());
    assert!(response.headers().get("content-encoding").is_none());

    // A request's own `Accept-Encoding` is kept: here it refuses compression.
    let identity = Request::get(api.url("/n"))
        .header("accept-encoding", "identity")
        .body(Full::default())
        .unwrap();
    let (response, body) = fetch(&transport, identity).await;
    assert_eq!(body, json());
    assert_eq!(
        response.headers()["content-length"],
        json().len().to_string(),
        "an identity body keeps its length"
    );
    let sent: Vec<_> = api
        .requests()
        .iter()
        .map(|r| r.headers["accept-encoding"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent[1], "identity");
}

#[tokio::test]
async fn a_trickled_compressed_body_is_decoded_as_it_arrives() {
    let api = MockApi::start().await;
    let reply = Reply::ok()
        .body(json())
        .encoded(Encoding::Gzip)
        .slow_body(4, Duration::from_millis(5));
    api.script("/slow", [reply]);
    let transport: Transport = Transport::builder().build().unwrap();
    let (_, body) = fetch(&transport, get(&api.url("/slow"))).await;
    assert_eq!(body, json());
}

#[tokio::test]
async fn decompression_off_asks_for_nothing_and_returns_the_bytes_as_sent() {
    let api = MockApi::start().await;
    api.script("/raw", [Reply::ok().body(json()).encoded(Encoding::Gzip)]);
    api.script(
        "/n",
        [Reply::ok().body(json()).encoded_if_accepted(Encoding::Gzip)],
    );
    let transport: Transport = Transport::builder().decompression(false).build().unwrap();

    let (response, body) = fetch(&transport, get(&api.url("/raw"))).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["content-length"], body.len().to_string());
    assert_eq!(body, Encoding::Gzip.encode(&json()).unwrap());

    // Nothing asked for, so a negotiating server sends the plain body.
    let (response, body) = fetch(&transport, get(&api.url("/n"))).await;
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(body, json());
    for request in api.requests() {
        assert!(request.headers.get("accept-encoding").is_none());
    }
}

#[tokio::test]
async fn an_encoding_not_asked_for_is_left_alone() {
    let api = MockApi::start().await;
    let reply = Reply::ok()
        .header("content-encoding", "compress")
        .body("LZW bytes");
    api.script("/lzw", [reply]);
    let transport: Transport = Transport::builder().build().unwrap();
    let (response, body) = fetch(&transport, get(&api.url("/lzw"))).await;
    assert_eq!(response.headers()["content-encoding"], "compress");
    assert_eq!(response.headers()["content-length"], "9");
    assert_eq!(body, "LZW bytes");
}

#[tokio::test]
async fn a_body_that_is_not_what_its_encoding_says_is_a_decode_error() {
    let api = MockApi::start().await;
    let transport: Transport = Transport::builder().build().unwrap();
    for encoding in Encoding::ALL {
        let lie = Reply::ok()
            .header("content-encoding", encoding.name())
            .body("this is not compressed at all, whatever the header says");
        api.script("/lie", [lie]);
        let response = head(&transport, get(&api.url("/lie"))).await;
        assert_eq!(response.status(), StatusCode::OK, "the head is fine");
        let err = body_error(response.into_body()).await;
        assert_eq!(err.kind(), BodyErrorKind::Decode, "{encoding:?}: {err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("could not decode the response body: "),
            "{text}"
        );
        assert!(err.source().is_some());
        // Behind a `BoxError`, it is still found by its type.
        let boxed: BoxError = Box::new(err);
        assert!(boxed.downcast_ref::<BodyError>().is_some());
    }
}

#[tokio::test]
async fn a_connection_lost_mid_body_is_a_read_error_decoded_or_not() {
    for encoding in [None, Some(Encoding::Gzip)] {
        let api = MockApi::start().await;
        let mut reply = Reply::ok()
            .body(json())
            .slow_body(10, Duration::from_millis(200));
        if let Some(encoding) = encoding {
            reply = reply.encoded(encoding);
        }
        api.script("/cut", [reply]);
        let transport: Transport = Transport::builder().build().unwrap();
        let response = head(&transport, get(&api.url("/cut"))).await;
        // The server goes away while the body trickles in.
        drop(api);
        let err = body_error(response.into_body()).await;
        assert_eq!(err.kind(), BodyErrorKind::Read, "{encoding:?}: {err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("could not read the response body: "),
            "{text}"
        );
        let mut hyper = false;
        let mut source = err.source();
        while let Some(e) = source {
            hyper |= e.is::<hyper::Error>();
            source = e.source();
        }
        assert!(hyper, "hyper's error is in the chain: {err:?}");
    }
}
