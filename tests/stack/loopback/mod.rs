//! The whole stack through calm's real transport against calm-mock servers, on real time.
//!
//! These tests assert counts, contents and causal order (a server-side arrival instant against
//! a limiter instant, both on tokio's clock), never durations.

mod conveniences;
mod pause;
mod quota;
mod redirects;
mod retries;
mod sharing;

use calm::Client;
use http::StatusCode;

/// Sends a GET for `path` through `client` and reads the whole body (so the connection goes
/// back to the pool).
async fn get(client: &Client, path: &str) -> (StatusCode, String) {
    let response = client.get(path).send().await.expect("a response");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}
