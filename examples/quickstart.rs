//! Run with: cargo run --example quickstart
//!
//! The classic API loop, the calm way. An embedded loopback API (calm-mock) allows 50 requests
//! per second, answers 429 with `Retry-After` when a client goes faster, and fails now and then
//! with a 503. Four tasks fetch 100 items each through clients taken from one `Registry`, so
//! they share one connection pool, one rate budget and one retry budget.
//!
//! The client is deliberately configured a little too fast (60/s against the server's 50/s):
//! watch the server's quota headers pause every task before the server has to refuse them, and
//! the 503s come back as retries. About 10 s of wall time, no network.

use calm::{Backoff, Quota, Registry, RetryPolicy};
use calm_mock::{MockApi, QuotaHeaders, Reply};
use indicatif::{ProgressBar, ProgressStyle};
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::time::Instant;
use tower::BoxError;

const TASKS: usize = 4;
const ITEMS_PER_TASK: usize = 100;
const SERVER_QUOTA: u32 = 50;
const CLIENT_QUOTA: u32 = 60;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let api = MockApi::builder()
        .quota(SERVER_QUOTA, Duration::from_secs(1))
        .quota_headers(QuotaHeaders::XRateLimit)
        .start()
        .await;
    // Every 12th item fails once with a 503, every 50th twice.
    for item in 0..TASKS * ITEMS_PER_TASK {
        let path = format!("/v1/items/{item}");
        if item % 50 == 7 {
            api.script(&path, [Reply::status(503), Reply::status(503), Reply::ok()]);
        } else if item % 12 == 5 {
            api.script(&path, [Reply::status(503), Reply::ok()]);
        }
    }
    let base = api.url("/v1");

    // One configuration for every base URL this program talks to.
    let registry = Registry::new(|builder| {
        builder
            .rate_limit(per_second(CLIENT_QUOTA))
            .retry(
                RetryPolicy::default()
                    .max_retries(3)
                    .backoff(Backoff::exponential(Duration::from_millis(50))),
            )
            .attempt_timeout(Duration::from_secs(5))
    });

    let total = (TASKS * ITEMS_PER_TASK) as u64;
    let progress = ProgressBar::new(total).with_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
    )?);
    let started = Instant::now();

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        // Each task asks the registry on its own: all get the one client for this base URL.
        let client = registry.get(&base)?;
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u32;
            for n in 0..ITEMS_PER_TASK {
                let item = n * TASKS + task;
                match client.get(format!("items/{item}")).send().await {
                    Ok(response) if response.status().is_success() => {}
                    _ => failed += 1,
                }
                let stats = client.stats();
                progress.set_message(format!(
                    "retries {}  429s {}",
                    stats.retries(),
                    stats.responses_429
                ));
                progress.inc(1);
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    progress.finish();
    let elapsed = started.elapsed();

    let client = registry.get(&base)?;
    let stats = client.stats();
    let limiter = client
        .limiter_snapshot()
        .expect("the registry configures a rate limit");
    let achieved = stats.attempts as f64 / elapsed.as_secs_f64();

    println!();
    println!("  base URL                 {}", client.base_url());
    println!("  clients in the registry  {}", registry.len());
    println!("  TCP connections          {}", api.connections());
    println!("  requests                 {}", stats.requests);
    println!("  failed requests          {failed}");
    println!("  attempts                 {}", stats.attempts);
    for (reason, count) in &stats.retries_by_reason {
        println!("  {:<24} {count}", format!("retries ({reason})"));
    }
    println!("  429s received            {}", stats.responses_429);
    println!("  server-requested pauses  {}", limiter.pauses);
    println!(
        "  time spent paced         {:.1} s, summed over {} waits",
        stats.rate_limit_wait.as_secs_f64(),
        stats.rate_limit_waits
    );
    println!("  wall time                {:.1} s", elapsed.as_secs_f64());
    println!(
        "  achieved rate            {achieved:.1} attempts/s (server quota {SERVER_QUOTA}/s, client quota {CLIENT_QUOTA}/s)"
    );
    Ok(())
}

fn per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).expect("a non-zero quota"))
}
