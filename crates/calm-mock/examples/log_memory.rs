//! How much memory the request log of a [`MockApi`] holds after a long run.
//!
//! Sends many small GETs (100,000 by default; the first argument changes it) over a few
//! keep-alive connections on loopback, then prints the resident memory of the process
//! (`VmRSS`, Linux only) before and after, and what the log kept. The mock runs with the
//! default log settings; a second argument, a number, sets its
//! [`log_limit`](calm_mock::MockApiBuilder::log_limit) instead (`0` keeps no entries).
//!
//! ```text
//! cargo run --release -p calm-mock --example log_memory -- 100000
//! cargo run --release -p calm-mock --example log_memory -- 100000 1000000
//! ```

use bytes::Bytes;
use calm_mock::MockApi;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Concurrent callers, each sending its share of the requests in turn.
const CALLERS: usize = 8;

/// The resident set size of this process in KiB, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn show(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("the first argument is a request count"))
        .unwrap_or(100_000);
    let mut builder = MockApi::builder();
    if let Some(limit) = std::env::args().nth(2) {
        builder = builder.log_limit(limit.parse().expect("the second argument is a log limit"));
    }
    let api = builder.start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    // Warm up the connections, the runtime and the allocator before the first reading.
    run(&api, &client, CALLERS * 100).await;
    let before = rss_kib();
    run(&api, &client, total).await;
    let after = rss_kib();

    println!("requests sent:       {}", total + CALLERS * 100);
    println!("request_count():     {}", api.request_count());
    println!("requests() kept:     {}", api.requests().len());
    println!("connections:         {}", api.connections());
    println!("VmRSS before:        {}", show(before));
    println!("VmRSS after:         {}", show(after));
    if let (Some(b), Some(a)) = (before, after) {
        let grown = a.saturating_sub(b) * 1024;
        println!(
            "grown:               {:.1} MiB ({} bytes per request)",
            grown as f64 / (1024.0 * 1024.0),
            grown / total.max(1) as u64
        );
    }
}

async fn run(
    api: &MockApi,
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    n: usize,
) {
    let callers = (0..CALLERS).map(|c| {
        let client = client.clone();
        let base = api.url("/v1/items/");
        tokio::spawn(async move {
            for i in (c..n).step_by(CALLERS) {
                let uri: http::Uri = format!("{base}{i}").parse().unwrap();
                let res = client.get(uri).await.expect("the mock answered");
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.expect("the body arrived");
            }
        })
    });
    for caller in callers.collect::<Vec<_>>() {
        caller.await.unwrap();
    }
}
