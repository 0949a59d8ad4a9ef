//! Run with: cargo run --example observe --features metrics
//!
//! What calm shows of itself, on a short scripted scenario against an embedded loopback API
//! (calm-mock), no network, about 1.5 s:
//!
//! 1. `/items` answers 503, then 200: one retry after a backoff.
//! 2. `/busy` answers 429 with `Retry-After: 1`: the rate limiter pauses every caller for a
//!    second, so `/other`, sent meanwhile, waits for it.
//! 3. Two requests at once against a quota of 5/s, each willing to wait 150 ms at most
//!    (`MaxWait`): the second's place is 200 ms away, so it is refused at once.
//!
//! Spans and events go to a `tracing-subscriber` fmt layer (set `RUST_LOG=info` for what an
//! operator sees by default; the example shows calm's DEBUG view). With the `metrics` feature,
//! the metrics recorded are printed at the end.

use calm::ratelimit::MaxWait;
use calm::{Backoff, Client, Quota, RetryPolicy};
use calm_mock::{MockApi, Reply};
use std::num::NonZeroU32;
use std::time::Duration;
use tower::BoxError;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,calm_retry=debug,calm_ratelimit=debug")),
        )
        // NOTE: each span is printed when it closes, with the fields recorded meanwhile.
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .init();
    #[cfg(feature = "metrics")]
    let snapshotter = {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install()?;
        snapshotter
    };

    let api = MockApi::start().await;
    api.script("/v1/items", [Reply::status(503), Reply::ok()]);
    api.script(
        "/v1/busy",
        [Reply::status(429).header("retry-after", "1"), Reply::ok()],
    );
    let client = Client::builder(api.url("/v1"))
        .bearer_auth("never-shown")
        .rate_limit(Quota::per_second(NonZeroU32::new(5).expect("not zero")))
        .retry(RetryPolicy::default().backoff(Backoff::constant(Duration::from_millis(200))))
        .build()?;

    println!("\n== 1. 503, then 200");
    client
        .get("/items?api_key=never-shown-either")
        .send()
        .await?;

    println!("\n== 2. a 429 with Retry-After pauses every caller");
    let busy = tokio::spawn(client.get("/busy").send());
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.get("/other").send().await?;
    busy.await??;

    println!("\n== 3. a max_wait refusal");
    tokio::time::sleep(Duration::from_millis(400)).await; // let the limiter fill up again
    let patient = MaxWait::new(Duration::from_millis(150));
    let (first, second) = tokio::join!(
        client.get("/a").extension(patient).send(),
        client.get("/b").extension(patient).send(),
    );
    first?;
    println!("refused: {}", second.expect_err("its place is 200 ms away"));

    println!("\n== the client now\n{client:#?}");
    println!("{:#?}", client.stats());

    #[cfg(feature = "metrics")]
    print_metrics(&snapshotter);
    #[cfg(not(feature = "metrics"))]
    println!("\n(run with --features metrics to see the metrics too)");
    Ok(())
}

/// One line per metric: name{labels} value.
#[cfg(feature = "metrics")]
fn print_metrics(snapshotter: &metrics_util::debugging::Snapshotter) {
    use metrics_util::debugging::DebugValue;

    println!("\n== metrics");
    let mut lines: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.to_string(),
                DebugValue::Histogram(values) => {
                    let values: Vec<String> = values.iter().map(|v| format!("{:.3}", v)).collect();
                    format!("[{}]", values.join(", "))
                }
            };
            format!("{}{{{}}} {}", key.name(), labels.join(","), value)
        })
        .collect();
    lines.sort();
    for line in lines {
        println!("{line}");
    }
}
