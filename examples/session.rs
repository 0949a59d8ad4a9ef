//! Run with: cargo run --example session
//!
//! Starts an embedded loopback API (calm-mock) and sends a few requests through
//! `SharedClientLayer` over calm's real transport, then prints what arrived at the server:
//! every path lands under the base path, and the default headers arrive unless the request
//! set its own.

use calm::client::transport::Transport;
use calm::client::SharedClientLayer;
use calm_mock::MockApi;
use http::Request;
use http_body_util::Full;
use tower::{BoxError, ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let api = MockApi::start().await;
    let base = format!("{}v1", api.base_url());

    let session = SharedClientLayer::builder(base.as_str())
        .bearer_auth("s3cr3t-token")
        .default_header("accept", "application/json")
        .build()?;
    let client = ServiceBuilder::new()
        .layer(session)
        .service(Transport::builder().build::<Full<bytes::Bytes>>()?);

    println!("base URL: {base}\n");
    let requests = [
        Request::get("/users?page=2").body(Full::default())?,
        Request::get("/users/42").body(Full::default())?,
        Request::get("/status")
            .header("accept", "text/plain")
            .body(Full::default())?,
        Request::get("/../admin").body(Full::default())?,
    ];
    for request in requests {
        let shown = request.uri().to_string();
        match client.clone().oneshot(request).await {
            Ok(response) => println!("{shown:<16} -> {}", response.status()),
            Err(error) => println!("{shown:<16} -> refused before sending: {error}"),
        }
    }

    println!(
        "\nwhat the server saw ({} TCP connection(s)):",
        api.connections()
    );
    for seen in api.requests() {
        let header = |name: &str| {
            seen.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        println!(
            "  {} {:<22} accept={:<18} authorization={} user-agent={}",
            seen.method,
            seen.uri.to_string(),
            header("accept"),
            if seen.headers.contains_key("authorization") {
                "<bearer>"
            } else {
                "-"
            },
            header("user-agent"),
        );
    }
    Ok(())
}
