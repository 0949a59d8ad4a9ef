//! Streaming request bodies: replayed on a retry up to `max_replay_bytes`, sent once beyond.

use bytes::Bytes;
use calm::retry::StopReason;
use calm::Body;
use futures_util::stream;
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::sync::mpsc;
use tower::BoxError;

use crate::support::{builder, immediate_retries, ms, Answer, Backend};

/// A body fed chunk by chunk through a channel by another task, a little apart.
fn channel_body(chunks: &'static [&'static str]) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
    tokio::spawn(async move {
        for chunk in chunks {
            tokio::time::sleep(ms(10)).await;
            if tx
                .send(Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let frames = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    Body::wrap(StreamBody::new(frames))
}

#[tokio::test(start_paused = true)]
async fn a_channel_fed_body_is_replayed_identically_on_a_retry() {
    let backend = Backend::new([Answer::status(503), Answer::status(503), Answer::ok()]);
    let client = builder().build_with(backend.clone()).unwrap();

    let response = client
        .put("/upload")
        .body(channel_body(&["alpha-", "beta-", "gamma"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.retry_info().unwrap().attempts(), 3);

    let bodies: Vec<_> = backend.arrivals().into_iter().map(|a| a.body).collect();
    assert_eq!(bodies, ["alpha-beta-gamma"; 3]);
}

#[tokio::test(start_paused = true)]
async fn a_stream_body_of_a_keyed_post_is_replayed_on_a_retry() {
    let backend = Backend::new([Answer::fail(), Answer::ok()]);
    let client = builder().build_with(backend.clone()).unwrap();

    let frames = ["{\"id\":", "7}"]
        .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c.as_bytes()))));
    let response = client
        .post("/orders")
        .header("idempotency-key", "order-7")
        .body(Body::wrap(StreamBody::new(stream::iter(frames))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let arrivals = backend.arrivals();
    assert_eq!(arrivals.len(), 2);
    for arrival in &arrivals {
        assert_eq!(arrival.body, "{\"id\":7}");
        assert_eq!(arrival.method, http::Method::POST);
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_over_max_replay_bytes_is_sent_once() {
    let backend = Backend::new([Answer::status(503), Answer::ok()]);
    let client = builder()
        .retry(immediate_retries().max_replay_bytes(8))
        .build_with(backend.clone())
        .unwrap();

    let response = client
        .put("/upload")
        .body(channel_body(&["alpha-", "beta-", "gamma"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let info = response.retry_info().unwrap();
    assert_eq!(info.attempts(), 1);
    assert_eq!(info.stop_reason(), &StopReason::BodyNotReplayable);
    assert_eq!(backend.count(), 1);
    assert_eq!(backend.arrivals()[0].body, "alpha-beta-gamma");
    assert_eq!(client.stats().retries(), 0);

    // A body under the cap is replayed.
    let backend_small = Backend::new([Answer::status(503), Answer::ok()]);
    let client = builder()
        .retry(immediate_retries().max_replay_bytes(8))
        .build_with(backend_small.clone())
        .unwrap();
    let response = client
        .put("/upload")
        .body(channel_body(&["abc", "def"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bodies: Vec<_> = backend_small
        .arrivals()
        .into_iter()
        .map(|a| a.body)
        .collect();
    assert_eq!(bodies, ["abcdef"; 2]);
}
