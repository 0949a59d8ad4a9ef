//! One Redis, several limiters (as several processes would have): what they share.
//!
//! Real time: each test runs a few hundred milliseconds to a few seconds against its own
//! redis-server.

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use calm_ratelimit::error::MaxWaitExceeded;
use calm_ratelimit::{Limiter, Quota, RateLimitLayer};
use calm_ratelimit_redis::RedisBackend;
use support::RedisServer;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

fn n(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn limiter(redis: &RedisServer, name: &str, quotas: &[Quota]) -> Limiter {
    RedisBackend::builder(redis.url(), name)
        .quotas(quotas.iter().copied())
        .limiter()
        .unwrap()
}

/// A service that answers 200 at once, behind a rate limit layer over `limiter`.
fn service(
    limiter: &Limiter,
    max_wait: Option<Duration>,
) -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<()>,
    Error = calm_ratelimit::BoxError,
    Future = impl Send,
> + Clone {
    let mut layer = RateLimitLayer::from_limiter(limiter.clone());
    if let Some(max_wait) = max_wait {
        layer = layer.max_wait(max_wait);
    }
    layer.layer(tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    }))
}

#[tokio::test]
async fn two_limiters_of_one_name_share_one_quota() {
    let redis = RedisServer::start();
    let quota = [Quota::per_second(n(10))];
    let (a, b) = (
        limiter(&redis, "shared", &quota),
        limiter(&redis, "shared", &quota),
    );
    let start = Instant::now();
    let mut at = Vec::new();
    for i in 0..10 {
        let l = if i % 2 == 0 { &a } else { &b };
        l.acquire().await.unwrap();
        at.push(start.elapsed());
    }
    // 10 per second: one place every 100 ms, whichever limiter asks. (A caller goes at its
    // place or a little after, as its timer fires: the first one's lateness is the slack.)
    for (i, went) in at.iter().enumerate() {
        assert!(*went + ms(3) >= at[0] + ms(100) * i as u32, "{at:?}");
    }
    let store = a.snapshot().store.unwrap();
    assert!(store.shared);
    assert_eq!(store.round_trips, 5);
    assert_eq!((store.outages, store.fallback_admissions), (0, 0));

    // Another name is another quota.
    let other = limiter(&redis, "other", &quota);
    let asked = Instant::now();
    other.acquire().await.unwrap();
    assert!(asked.elapsed() < ms(50));
}

#[tokio::test]
async fn callers_of_one_process_are_served_in_order_in_one_round_trip_each() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, "fifo", &[Quota::per_second(n(50))]);
    let start = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let acquire = limiter.acquire();
            tokio::spawn(async move {
                acquire.await.unwrap();
                (i, start.elapsed())
            })
        })
        .collect();
    let mut served = Vec::new();
    for task in tasks {
        served.push(task.await.unwrap());
    }
    served.sort_by_key(|(_, at)| *at);
    let order: Vec<usize> = served.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..20).collect::<Vec<_>>());
    let store = limiter.snapshot().store.unwrap();
    // Batched: far fewer round trips than callers, never more.
    assert!(store.round_trips <= 20, "{store:?}");
    assert!(served[19].1 >= ms(19 * 20 - 1), "{served:?}");
}

#[tokio::test]
async fn a_place_past_max_wait_takes_nothing_and_names_its_instant() {
    let redis = RedisServer::start();
    let quota = [Quota::per_second(n(2))];
    let (a, b) = (
        limiter(&redis, "bounded", &quota),
        limiter(&redis, "bounded", &quota),
    );
    a.acquire().await.unwrap();
    let asked = Instant::now();
    let err = service(&b, Some(ms(100)))
        .oneshot(http::Request::new(()))
        .await
        .unwrap_err();
    let err = err.downcast_ref::<MaxWaitExceeded>().unwrap();
    // NOTE: the wait counts from the local ask to the answer's arrival plus the wait Redis
    // gave, so it can pass 500 ms by a round trip.
    assert!(err.wait() > ms(300) && err.wait() <= ms(520), "{err:?}");
    assert!(asked.elapsed() < ms(100), "refused at once");
    // Nothing was taken: the next place is still the one the refusal named.
    let asked = Instant::now();
    a.acquire().await.unwrap();
    let waited = asked.elapsed();
    assert!(waited < ms(520), "{waited:?}");
}

#[tokio::test]
async fn a_pause_from_one_process_holds_every_process() {
    let redis = RedisServer::start();
    let quota = [Quota::per_second(n(100))];
    let (a, b) = (
        limiter(&redis, "paused", &quota),
        limiter(&redis, "paused", &quota),
    );
    b.acquire().await.unwrap();
    let start = Instant::now();
    // What a 429 with `Retry-After: 1` seen by A does.
    a.pause_until(start + ms(1000));
    let held = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire().await.unwrap();
            start.elapsed()
        }
    });
    let waited = held.await.unwrap();
    assert!(waited >= ms(995), "B went {waited:?} into a 1 s pause");
    assert!(waited < ms(1300), "{waited:?}");
    assert!(b.snapshot().paused_until.is_none());
}

#[tokio::test]
async fn a_caller_holding_a_place_inside_a_new_pause_takes_one_after_it() {
    let redis = RedisServer::start();
    let quota = [Quota::per_second(n(4))];
    let (a, b) = (
        limiter(&redis, "moved", &quota),
        limiter(&redis, "moved", &quota),
    );
    b.acquire().await.unwrap();
    let start = Instant::now();
    // B's next place is 250 ms away: it holds it...
    let held = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire().await.unwrap();
            start.elapsed()
        }
    });
    tokio::time::sleep(ms(50)).await;
    // ...when A learns of a pause until 800 ms: B learns it too (published) and waits.
    a.pause_until(start + ms(800));
    let went = held.await.unwrap();
    assert!(went >= ms(795), "B went at {went:?}, inside the pause");
    assert!(went < ms(1200), "{went:?}");
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded_unseen() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, "noscript", &[Quota::per_second(n(1000))]);
    limiter.acquire().await.unwrap();
    assert_eq!(redis.command(&["SCRIPT", "FLUSH"]), "OK");
    limiter.acquire().await.unwrap();
    let store = limiter.snapshot().store.unwrap();
    assert_eq!(
        (store.outages, store.fallback_admissions),
        (0, 0),
        "{store:?}"
    );
}

#[tokio::test]
async fn keys_expire_once_their_state_no_longer_matters() {
    let redis = RedisServer::start();
    let quotas = [
        Quota::per_second(n(5)),
        Quota::per_period(n(3), Duration::from_secs(2)).unwrap(),
    ];
    let limiter = limiter(&redis, "expiry", &quotas);
    for _ in 0..3 {
        limiter.acquire().await.unwrap();
    }
    limiter.pause_until(Instant::now() + ms(300));
    tokio::time::sleep(ms(100)).await;
    assert_eq!(redis.command(&["DBSIZE"]), "3");
    // The longest period is 2 s: after it, nothing is left.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(redis.command(&["DBSIZE"]), "0");
}

#[tokio::test]
async fn half_of_100_waiters_dropped_the_rest_go_in_order_and_nothing_leaks() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, "cancel", &[Quota::per_second(n(200))]);
    let start = Instant::now();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..100 {
        let acquire = limiter.acquire();
        if i % 2 == 0 {
            kept.push(tokio::spawn(async move {
                acquire.await.unwrap();
                (i, start.elapsed())
            }));
        } else {
            dropped.push(tokio::spawn(async move {
                let _ = tokio::time::timeout(ms(20), acquire).await;
            }));
        }
    }
    for task in dropped {
        task.await.unwrap();
    }
    let mut served = Vec::new();
    for task in kept {
        served.push(task.await.unwrap());
    }
    let mut by_time = served.clone();
    by_time.sort_by_key(|(_, at)| *at);
    assert_eq!(by_time, served, "served out of order");
    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.queued, 0, "{snapshot:?}");
    // 100 places at 5 ms: the last kept caller's place is at most 495 ms away.
    assert!(served[49].1 < ms(700), "{served:?}");
}

#[tokio::test]
async fn the_last_reservation_cancelled_is_given_back() {
    let redis = RedisServer::start();
    let quota = [Quota::per_second(n(2))];
    let (a, b) = (
        limiter(&redis, "refund", &quota),
        limiter(&redis, "refund", &quota),
    );
    a.acquire().await.unwrap();
    // A reserves the place at 500 ms, then gives up.
    assert!(tokio::time::timeout(ms(100), a.acquire()).await.is_err());
    tokio::time::sleep(ms(50)).await;
    // Nothing was reserved after it: B gets that place, not the one at 1 s.
    let asked = Instant::now();
    b.acquire().await.unwrap();
    let waited = asked.elapsed();
    assert!(waited < ms(450), "{waited:?}");
}

/// A pause arrives later than Redis set it (it is published, or written by this process and
/// heard back), so its end here lies a little after its end in Redis; the first place after
/// it, which Redis gives at its own end, is still taken, not thrown away for the next one.
#[tokio::test]
async fn the_first_place_after_a_pause_is_not_lost() {
    let redis = RedisServer::start();
    let quota = [Quota::per_second(n(10))];
    let (a, b) = (
        limiter(&redis, "after-pause", &quota),
        limiter(&redis, "after-pause", &quota),
    );
    a.acquire().await.unwrap();
    b.acquire().await.unwrap();
    for (name, limiter) in [("the pausing process", &a), ("another process", &b)] {
        tokio::time::sleep(ms(200)).await;
        let start = Instant::now();
        a.pause_until(start + ms(500));
        tokio::time::sleep(ms(20)).await;
        limiter.acquire().await.unwrap();
        let went = start.elapsed();
        assert!(went >= ms(495), "{name}: went {went:?} into the pause");
        assert!(
            went < ms(560),
            "{name}: went {went:?}, a place after the first"
        );
    }
}

#[tokio::test]
async fn only_a_place_that_was_not_free_counts_as_a_wait() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, "waits", &[Quota::per_second(n(20))]);
    for _ in 0..3 {
        limiter.acquire().await.unwrap();
        tokio::time::sleep(ms(60)).await;
    }
    // Each asked after the last place had passed: the round trips were no waits.
    assert_eq!(limiter.snapshot().waits, 0);
    limiter.acquire().await.unwrap();
    limiter.acquire().await.unwrap();
    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.waits, 1);
    assert!(snapshot.total_waited >= ms(40), "{snapshot:?}");
}
