//! Compressed replies: what arrives is the body compressed, named by `Content-Encoding`.

use std::io::Read as _;

use calm_mock::{Encoding, MockApi, Reply};
use http::Request;
use http_body_util::Full;

use crate::support::{client, get, send};

fn decode(encoding: Encoding, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        Encoding::Gzip => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        Encoding::Deflate => {
            flate2::read::ZlibDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        Encoding::Brotli => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Encoding::Zstd => out = zstd::decode_all(data).unwrap(),
        other => panic!("no decoder for {other:?} in this test"),
    }
    out
}

#[tokio::test]
async fn every_encoding_arrives_compressed_and_named() {
    let api = MockApi::start().await;
    let plain = br#"{"items":[1,2,3],"next":null}"#.repeat(20);
    let client = client();
    for encoding in Encoding::ALL {
        api.script(
            "/items",
            [Reply::ok().encoded(encoding).body(plain.clone())],
        );
        let answer = get(&client, &api.url("/items")).await;
        assert_eq!(answer.headers["content-encoding"], encoding.name());
        assert_eq!(
            answer.headers["content-length"],
            answer.body.len().to_string(),
            "{encoding:?}: the length is the compressed one"
        );
        assert!(answer.body.len() < plain.len(), "{encoding:?}");
        assert_eq!(decode(encoding, &answer.body), plain, "{encoding:?}");
    }
}

#[tokio::test]
async fn a_slow_compressed_body_trickles_the_compressed_bytes() {
    let api = MockApi::start().await;
    let plain = b"slow and compressed ".repeat(50);
    let reply = Reply::ok()
        .body(plain.clone())
        .encoded(Encoding::Zstd)
        .slow_body(3, std::time::Duration::from_millis(5));
    api.script("/slow", [reply]);
    let answer = get(&client(), &api.url("/slow")).await;
    assert_eq!(answer.headers["content-encoding"], "zstd");
    assert_eq!(decode(Encoding::Zstd, &answer.body), plain);
}

#[tokio::test]
async fn if_accepted_follows_the_request_accept_encoding() {
    let api = MockApi::start().await;
    let reply = Reply::ok()
        .body("negotiated")
        .encoded_if_accepted(Encoding::Gzip);
    api.script("/n", [reply]);
    let client = client();

    let plain = get(&client, &api.url("/n")).await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert_eq!(plain.body, "negotiated");

    for (accept, compressed) in [
        ("gzip", true),
        ("br, gzip;q=0.5", true),
        ("*", true),
        ("gzip;q=0", false),
        ("br, zstd", false),
    ] {
        let req = Request::get(api.url("/n"))
            .header("accept-encoding", accept)
            .body(Full::default())
            .unwrap();
        let answer = send(&client, req).await.unwrap();
        let named = answer.headers.get("content-encoding").is_some();
        assert_eq!(named, compressed, "{accept}");
        if compressed {
            assert_eq!(decode(Encoding::Gzip, &answer.body), b"negotiated");
        } else {
            assert_eq!(answer.body, "negotiated", "{accept}");
        }
    }
}

#[tokio::test]
async fn an_empty_body_is_not_encoded() {
    let api = MockApi::start().await;
    api.script("/empty", [Reply::status(204).encoded(Encoding::Brotli)]);
    let answer = get(&client(), &api.url("/empty")).await;
    assert!(answer.headers.get("content-encoding").is_none());
    assert!(answer.body.is_empty());
}
