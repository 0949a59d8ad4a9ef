//! The adaptive rate against a server that keeps its quota to itself: calm-mock in quota mode
//! answering bare 429s (no quota headers, no `Retry-After`), on paused time, 4 tasks sending
//! as fast as the client lets them.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use calm::ratelimit::Adaptive;
use calm::{Client, Quota};
use calm_mock::{MockApi, QuotaHeaders};
use tokio::time::Instant;

const TASKS: usize = 4;

/// A server allowing `limit` per second, and a client learning its rate from `start`/s.
async fn setup(limit: u32, adaptive: Adaptive, ceiling: Option<u32>) -> (MockApi, Client) {
    let api = MockApi::builder()
        .quota(limit, Duration::from_secs(1))
        .quota_headers(QuotaHeaders::Silent)
        .log_limit(0)
        .start()
        .await;
    let mut builder = Client::builder(api.url("/v1")).adaptive_rate(adaptive);
    if let Some(ceiling) = ceiling {
        builder = builder.rate_limit(Quota::per_second(NonZeroU32::new(ceiling).unwrap()));
    }
    (api, builder.build().unwrap())
}

/// `TASKS` tasks sending through `client` until stopped.
fn load(client: &Client) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..TASKS {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // NOTE: a 429 retries could not fix comes back as a response: that is fine.
                if let Ok(response) = client.get("/items").send().await {
                    let _ = response.bytes().await;
                }
            }
        });
    }
    stop
}

/// What the server saw over `seconds` from now: requests per second and the share of 429s.
async fn observe(api: &MockApi, seconds: u64) -> (f64, f64) {
    let (requests, refused) = (api.request_count(), api.count_429());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let requests = (api.request_count() - requests) as f64;
    let refused = (api.count_429() - refused) as f64;
    (requests / seconds as f64, refused / requests.max(1.0))
}

fn learned(client: &Client) -> f64 {
    client.stats().learned_rate.expect("an adaptive client")
}

#[tokio::test(start_paused = true)]
async fn it_learns_an_unpublished_limit_and_follows_it_up_and_down() {
    let (api, client) = setup(37, Adaptive::starting_at(100.0), None).await;
    let stop = load(&client);

    // From 100/s to the server's 37/s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rate, _) = observe(&api, 10).await;
    let (_, throttled) = observe(&api, 20).await;
    println!(
        "37/s: {rate:.1}/s sent over 10..20 s, {:.1}% 429 over 20..40 s",
        throttled * 100.0
    );
    assert!((0.8 * 37.0..=37.0).contains(&rate), "{rate}");
    assert!(throttled < 0.05, "{throttled}");

    // The server raises its limit to 60/s: 80% of it within 30 s.
    api.set_quota(60, Duration::from_secs(1));
    let raised = Instant::now();
    let mut reached = None;
    while raised.elapsed() < Duration::from_secs(30) {
        let (rate, _) = observe(&api, 1).await;
        if rate >= 0.8 * 60.0 {
            reached = Some(raised.elapsed());
            break;
        }
    }
    println!("60/s: 48/s reached after {reached:?}");
    assert!(reached.is_some(), "never reached 48/s");

    // The server drops to 10/s: 12/s or less within 3 throttling episodes (each lowers the
    // rate once, however many 429s it holds), then it settles at the new limit.
    api.set_quota(10, Duration::from_secs(1));
    let mut episodes = 0;
    let mut rate = learned(&client);
    let dropped = Instant::now();
    while rate > 12.0 {
        assert!(
            dropped.elapsed() < Duration::from_secs(10),
            "still at {rate}/s 10 s after the drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = learned(&client);
        if now < rate * 0.9 {
            episodes += 1;
        }
        rate = now;
    }
    println!("10/s: at {rate:.1}/s after {episodes} throttling episodes");
    assert!(episodes <= 3, "{episodes} episodes");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rate, throttled) = observe(&api, 10).await;
    println!(
        "10/s: {rate:.1}/s sent 10..20 s later, {:.1}% 429",
        throttled * 100.0
    );
    assert!((0.8 * 10.0..=11.0).contains(&rate), "{rate}");
    stop.store(true, Ordering::Relaxed);
}

#[tokio::test(start_paused = true)]
async fn an_adaptive_rate_needs_server_hints_and_the_clients_own_limiter() {
    let deaf = Client::builder("http://api.test")
        .adaptive_rate(Adaptive::starting_at(10.0))
        .server_hints(false)
        .build()
        .unwrap_err();
    assert_eq!(deaf.kind(), calm::BuildErrorKind::AdaptiveRate);
    let limiter = calm::ratelimit::Limiter::new(Quota::per_second(NonZeroU32::new(5).unwrap()));
    let both = Client::builder("http://api.test")
        .adaptive_rate(Adaptive::starting_at(10.0))
        .limiter(limiter)
        .build()
        .unwrap_err();
    assert_eq!(both.kind(), calm::BuildErrorKind::AdaptiveRate);
    let invalid = Client::builder("http://api.test")
        .adaptive_rate(Adaptive::starting_at(f64::INFINITY))
        .build()
        .unwrap_err();
    assert_eq!(invalid.kind(), calm::BuildErrorKind::AdaptiveRate);
}

#[tokio::test(start_paused = true)]
async fn a_fixed_quota_stays_a_ceiling() {
    let (api, client) = setup(37, Adaptive::starting_at(100.0), Some(20)).await;
    let stop = load(&client);
    for _ in 0..20 {
        let (rate, throttled) = observe(&api, 1).await;
        assert!(rate <= 20.0, "{rate}");
        assert_eq!(throttled, 0.0);
        assert!(learned(&client) <= 20.0);
    }
    stop.store(true, Ordering::Relaxed);
}

#[tokio::test(start_paused = true)]
async fn two_base_urls_learn_independently_and_clones_together() {
    let (slow_api, slow) = setup(10, Adaptive::starting_at(50.0), None).await;
    let (fast_api, fast) = setup(40, Adaptive::starting_at(50.0), None).await;
    // Two clones of one client load the slow API: together, they must keep to its 10/s.
    let clone = slow.clone();
    let stops = [load(&slow), load(&clone), load(&fast)];
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (slow_rate, _) = observe(&slow_api, 10).await;
    let (fast_rate, _) = observe(&fast_api, 10).await;
    println!("independent: {slow_rate:.1}/s against 10/s, {fast_rate:.1}/s against 40/s");
    assert!((8.0..=11.0).contains(&slow_rate), "{slow_rate}");
    assert_eq!(learned(&slow), learned(&clone), "one rate for every clone");
    assert_ne!(learned(&slow), learned(&fast));
    assert!(fast_rate >= 30.0, "{fast_rate}");
    for stop in stops {
        stop.store(true, Ordering::Relaxed);
    }
}
