//! Redis restarted, killed, too slow: the fallback policy, and back to sharing.
//!
//! Real time, against each test's own redis-server.

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use calm_ratelimit::error::Unavailable;
use calm_ratelimit::{Limiter, Quota};
use calm_ratelimit_redis::{Fallback, RedisBackend};
use support::RedisServer;
use tokio::time::Instant;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const TIMEOUT: Duration = Duration::from_millis(200);
const RECHECK: Duration = Duration::from_millis(300);

fn limiter(redis: &RedisServer, fallback: Fallback) -> Limiter {
    RedisBackend::builder(redis.url(), "outage")
        .quota(Quota::per_second(NonZeroU32::new(100).unwrap()))
        .timeout(TIMEOUT)
        .recheck_interval(RECHECK)
        .fallback(fallback)
        .limiter()
        .unwrap()
}

/// Waits (bounded) until the limiter says it shares its quota again.
async fn shared_again(limiter: &Limiter) -> bool {
    let until = Instant::now() + RECHECK * 5;
    while Instant::now() < until {
        // NOTE: a request is what finds out; the driver rechecks on its own schedule.
        limiter.acquire().await.unwrap();
        if limiter.snapshot().store.unwrap().shared {
            return true;
        }
        tokio::time::sleep(ms(50)).await;
    }
    false
}

#[tokio::test(flavor = "current_thread")]
async fn a_restart_mid_run_loses_no_request() {
    let mut redis = RedisServer::start();
    // NOTE: failing closed, so that an error could not hide behind the fallback.
    let limiter = limiter(&redis, Fallback::FailClosed);
    for i in 0..60 {
        if i == 20 {
            redis.restart();
        }
        limiter.acquire().await.unwrap();
    }
    // The broken connection was replaced, the command sent again, the script (gone with
    // the restart) loaded again: no outage at all.
    let store = limiter.snapshot().store.unwrap();
    assert!(store.shared, "{store:?}");
    assert_eq!((store.outages, store.unavailable), (0, 0), "{store:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_dead_redis_falls_back_within_the_timeout_and_recovers() {
    let mut redis = RedisServer::start();
    let limiter = limiter(&redis, Fallback::InProcess);
    limiter.acquire().await.unwrap();
    redis.kill();

    let asked = Instant::now();
    for _ in 0..20 {
        limiter.acquire().await.unwrap();
    }
    // 20 places at 100/s in this process: about 200 ms, plus one timeout at most.
    assert!(asked.elapsed() < TIMEOUT + ms(400), "{:?}", asked.elapsed());
    let store = limiter.snapshot().store.unwrap();
    assert!(!store.shared, "{store:?}");
    assert_eq!(store.outages, 1);
    assert!(store.fallback_admissions >= 20, "{store:?}");

    redis.restart();
    assert!(shared_again(&limiter).await, "{:?}", limiter.snapshot());
    assert_eq!(limiter.snapshot().store.unwrap().outages, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn failing_closed_refuses_promptly_with_a_typed_error() {
    let mut redis = RedisServer::start();
    let limiter = limiter(&redis, Fallback::FailClosed);
    limiter.acquire().await.unwrap();
    redis.kill();

    let asked = Instant::now();
    let err: Unavailable = limiter.acquire().await.unwrap_err();
    assert!(asked.elapsed() < TIMEOUT + ms(100), "{:?}", asked.elapsed());
    assert!(std::error::Error::source(&err).is_some());
    // During the outage, at once.
    let asked = Instant::now();
    assert!(limiter.acquire().await.is_err());
    assert!(asked.elapsed() < ms(20), "{:?}", asked.elapsed());
    assert!(limiter.snapshot().store.unwrap().unavailable >= 2);

    redis.restart();
    tokio::time::sleep(RECHECK * 2).await;
    limiter.acquire().await.unwrap();
    assert!(limiter.snapshot().store.unwrap().shared);
}

#[tokio::test(flavor = "current_thread")]
async fn a_redis_too_slow_to_answer_counts_as_out_of_reach() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, Fallback::InProcess);
    limiter.acquire().await.unwrap();
    // Redis holds every client for a second.
    assert_eq!(redis.command(&["CLIENT", "PAUSE", "1000", "ALL"]), "OK");
    let asked = Instant::now();
    limiter.acquire().await.unwrap();
    let waited = asked.elapsed();
    assert!(
        waited >= TIMEOUT - ms(5) && waited < TIMEOUT + ms(100),
        "{waited:?}"
    );
    assert!(!limiter.snapshot().store.unwrap().shared);
}

#[tokio::test(flavor = "current_thread")]
async fn a_pause_learned_during_an_outage_is_written_once_redis_is_back() {
    let mut redis = RedisServer::start();
    let limiter = limiter(&redis, Fallback::InProcess);
    limiter.acquire().await.unwrap();
    redis.kill();
    let paused_at = Instant::now();
    limiter.pause_until(paused_at + ms(2000));
    // The write of the pause fails: an outage.
    tokio::time::sleep(TIMEOUT * 2).await;
    assert_eq!(limiter.snapshot().store.unwrap().outages, 1);
    redis.restart();
    tokio::time::sleep(RECHECK * 2).await;
    let before = limiter.snapshot().store.unwrap();
    assert!(before.shared, "{before:?}");

    limiter.acquire().await.unwrap();
    assert!(paused_at.elapsed() >= ms(1995), "{:?}", paused_at.elapsed());
    let after = limiter.snapshot().store.unwrap();
    // NOTE: without the write, every place Redis gave lay inside the pause and was taken
    // again: thousands of round trips.
    assert!(
        after.round_trips - before.round_trips <= 3,
        "{before:?} → {after:?}"
    );
    assert_eq!(redis.command(&["EXISTS", "calm:rl:{outage}:pause"]), "0");
}
