//! Creating an order with a JSON `POST`, then uploading its attachment as a stream, each with
//! an `Idempotency-Key` (so the client may retry them safely) and a time limit of its own.
//!
//! ```sh
//! cargo run --example upload
//! ```
//!
//! The server fails the first attempt of each with a 503: the `POST`s are retried because they
//! carry an `Idempotency-Key`, and the streamed upload is replayed from the buffer the client
//! kept while sending it.

use std::time::Duration;

use bytes::Bytes;
use calm::{Body, Client};
use calm_mock::{MockApi, Reply};
use futures_util::stream;
use http_body_util::StreamBody;

#[derive(serde::Serialize)]
struct NewOrder<'a> {
    sku: &'a str,
    quantity: u32,
}

#[derive(Debug, serde::Deserialize)]
struct Order {
    id: u64,
}

/// The attachment, produced piece by piece (say, read from a file).
fn attachment() -> Body {
    let pieces = ["%PDF-1.7\n", "...pages...\n", "%%EOF\n"]
        .map(|piece| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(piece))));
    Body::wrap(StreamBody::new(stream::iter(pieces)))
}

async fn create_and_upload(client: &Client) -> Result<Order, calm::Error> {
    let order: Order = client
        .post("orders")
        .header("idempotency-key", "order-7f3a")
        .json(&NewOrder {
            sku: "bolt-m8",
            quantity: 200,
        })
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    client
        .post(format!("orders/{}/attachment", order.id))
        .header("idempotency-key", "attachment-7f3a")
        .header("content-type", "application/pdf")
        .body(attachment())
        .timeout(Duration::from_secs(30))
        .send()
        .await?
        .error_for_status()?;
    Ok(order)
}

async fn run() -> Result<(Order, Vec<calm_mock::RecordedRequest>), calm::Error> {
    let api = MockApi::start().await;
    api.script(
        "/v1/orders",
        [Reply::status(503), Reply::status(201).body(r#"{"id":42}"#)],
    );
    api.script(
        "/v1/orders/42/attachment",
        [Reply::status(503), Reply::status(204)],
    );
    let client = Client::builder(format!("{}v1/", api.base_url()))
        .retry(calm::RetryPolicy::default().backoff(calm::Backoff::none()))
        .build()
        .expect("a valid configuration");
    let order = create_and_upload(&client).await?;
    Ok((order, api.requests()))
}

#[tokio::main]
async fn main() -> Result<(), calm::Error> {
    let (order, requests) = run().await?;
    println!("order {} created and its attachment uploaded", order.id);
    for request in requests {
        println!(
            "{} {} ({} bytes, idempotency-key {:?})",
            request.method,
            request.uri,
            request.body.len(),
            request.headers.get("idempotency-key")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn both_posts_are_retried_whole() {
        let (order, requests) = super::run().await.unwrap();
        assert_eq!(order.id, 42);
        assert_eq!(requests.len(), 4);
        let uploads: Vec<_> = requests
            .iter()
            .filter(|r| r.uri.path().ends_with("/attachment"))
            .collect();
        assert_eq!(uploads.len(), 2);
        for upload in uploads {
            assert_eq!(upload.body, "%PDF-1.7\n...pages...\n%%EOF\n");
        }
    }
}
