//! Run with: cargo run --example adaptive
//!
//! An API that keeps its quota to itself: calm-mock allows 37 requests per second and answers
//! a bare 429 (no `Retry-After`, no quota headers) above it. After 40 s it raises its limit
//! to 60/s, after 70 s it drops it to 10/s. A client with an adaptive rate, starting at
//! 100/s, sends from 4 tasks as fast as it lets them; the chart shows the rate it learned,
//! second by second. 100 s of paused tokio time: it runs in a moment, no network.

use calm::ratelimit::Adaptive;
use calm::Client;
use calm_mock::{MockApi, QuotaHeaders};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::BoxError;

const SECONDS: u64 = 100;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    let api = MockApi::builder()
        .quota(37, Duration::from_secs(1))
        .quota_headers(QuotaHeaders::Silent)
        .log_limit(0)
        .start()
        .await;
    let client = Client::builder(api.url("/v1"))
        .adaptive_rate(Adaptive::starting_at(100.0))
        .build()?;

    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..4 {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(response) = client.get("/items").send().await {
                    let _ = response.bytes().await;
                }
            }
        });
    }

    let mut learned = Vec::new();
    let mut sent = Vec::new();
    for second in 0..SECONDS {
        match second {
            40 => api.set_quota(60, Duration::from_secs(1)),
            70 => api.set_quota(10, Duration::from_secs(1)),
            _ => true,
        };
        let before = api.request_count();
        tokio::time::sleep(Duration::from_secs(1)).await;
        learned.push(client.stats().learned_rate.unwrap_or(0.0));
        sent.push((api.request_count() - before) as f64);
    }
    stop.store(true, Ordering::Relaxed);

    println!("server limit: 37/s until 40 s, 60/s until 70 s, then 10/s\n");
    chart("learned rate", &learned);
    chart("sent per s  ", &sent);
    println!("{:14}{}", "", axis());
    for (from, to, limit) in [(20, 40, 37.0), (60, 70, 60.0), (85, 100, 10.0)] {
        let n = (to - from) as f64;
        let mean = sent[from..to].iter().sum::<f64>() / n;
        println!(
            "{from:>3}–{to:<3} s: sent {mean:5.1}/s against {limit}/s ({:.0}%)",
            mean / limit * 100.0
        );
    }
    println!(
        "429s: {} of {} requests ({:.1}%)",
        api.count_429(),
        api.request_count(),
        api.count_429() as f64 / api.request_count() as f64 * 100.0
    );
    Ok(())
}

/// One line of bars, one per second, scaled to 70/s.
fn chart(label: &str, values: &[f64]) {
    let line: String = values
        .iter()
        .map(|v| {
            let level = (v / 70.0 * BARS.len() as f64) as usize;
            BARS[level.min(BARS.len() - 1)]
        })
        .collect();
    println!("{label}  {line}");
}

/// A tick every 10 seconds.
fn axis() -> String {
    (0..SECONDS)
        .map(|s| if s % 10 == 0 { '|' } else { ' ' })
        .collect()
}
