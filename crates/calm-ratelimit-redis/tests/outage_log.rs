//! What an outage logs: one WARN when Redis goes out of reach, one INFO when it answers again.
//!
//! NOTE: a binary of its own: the events are captured with a thread-local subscriber, and
//! tests on other threads of one binary would race it for tracing's per-callsite interest.

mod support;

use std::io::Write;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calm_ratelimit::Quota;
use calm_ratelimit_redis::RedisBackend;
use support::RedisServer;
use tokio::time::Instant;

/// Everything logged while it lives, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_outage_is_logged_once_at_warn_and_its_end_at_info() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut redis = RedisServer::start();
    let limiter = RedisBackend::builder(redis.url(), "logged")
        .quota(Quota::per_second(NonZeroU32::new(100).unwrap()))
        .timeout(Duration::from_millis(200))
        .recheck_interval(Duration::from_millis(300))
        .limiter()
        .unwrap();
    limiter.acquire().await.unwrap();
    redis.kill();
    for _ in 0..20 {
        limiter.acquire().await.unwrap();
    }
    let text = logs.text();
    assert_eq!(text.matches("Redis is out of reach").count(), 1, "{text}");
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("limiter=logged"), "{text}");

    redis.restart();
    let until = Instant::now() + Duration::from_secs(2);
    while !limiter.snapshot().store.unwrap().shared && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = logs.text();
    assert!(
        text.contains("INFO") && text.contains("Redis answers again"),
        "{text}"
    );
    assert_eq!(text.matches("Redis is out of reach").count(), 1, "{text}");
}
