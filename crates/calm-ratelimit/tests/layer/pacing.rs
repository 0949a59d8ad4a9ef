use std::time::Duration;

use calm_ratelimit::{Limiter, Quota, RateLimitLayer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

use crate::support::{self, ms, n, req, secs, serve};

#[tokio::test(start_paused = true)]
async fn sixty_per_minute_four_tasks_four_clones() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::new(Quota::per_minute(n(60))).layer(inner);

    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let mut svc = svc.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let ready = svc.ready().await.unwrap();
                    ready.call(req(format!("{t}-{i}"))).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let times = arrivals.times();
    assert_eq!(times.len(), 100);
    for (k, t) in times.iter().enumerate() {
        assert_eq!(*t, secs(k as u64), "request {k}");
    }
    let snap = svc.limiter().snapshot();
    assert_eq!(snap.waits, 99);
}

#[tokio::test(start_paused = true)]
async fn burst_admits_five_then_one_every_100ms() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::new(Quota::per_second(n(10)).burst(n(5))).layer(inner);

    let tasks: Vec<_> = (0..10)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let expected: Vec<_> = [0, 0, 0, 0, 0, 100, 200, 300, 400, 500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(arrivals.times(), expected);
}

/// The earliest instant each quota alone admits request `k`, given the earlier admissions
/// (GCRA: `t_k >= t_i + (k - i + 1 - burst) * interval` for every `i < k`).
fn bound(quota: &Quota, earlier: &[Duration]) -> Duration {
    let k = earlier.len() as i64;
    let b = i64::from(quota.burst_size().get());
    earlier
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let spans = k - i as i64 + 1 - b;
            (spans > 0).then(|| *t + quota.interval() * spans as u32)
        })
        .max()
        .unwrap_or(Duration::ZERO)
}

#[tokio::test(start_paused = true)]
async fn two_quotas_follow_the_tighter_at_every_point() {
    // 2 per second, and 5 per 10 seconds of which all 5 may go at once.
    let fast = Quota::per_second(n(2));
    let slow = Quota::per_period(n(5), secs(10)).unwrap().burst(n(5));
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let layer = RateLimitLayer::from_limiter(Limiter::with_quotas([fast, slow]));
    let svc = layer.layer(inner);

    let tasks: Vec<_> = (0..12)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let times = arrivals.times();
    // The fast quota binds first, then the slow one.
    let expected: Vec<_> = [
        0, 500, 1000, 1500, 2000, 2500, 4000, 6000, 8000, 10000, 12000, 14000,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(times, expected);
    for k in 0..times.len() {
        let tighter = bound(&fast, &times[..k]).max(bound(&slow, &times[..k]));
        assert_eq!(times[k], tighter, "request {k}");
    }
}

#[tokio::test(start_paused = true)]
async fn two_quotas_without_burst_space_by_the_slower() {
    let limiter = Limiter::with_quotas([
        Quota::per_second(n(2)),
        Quota::per_period(n(5), secs(10)).unwrap(),
    ]);
    let start = Instant::now();
    let mut times = Vec::new();
    for _ in 0..4 {
        limiter.acquire().await.unwrap();
        times.push(start.elapsed());
    }
    assert_eq!(times, [secs(0), secs(2), secs(4), secs(6)]);
}

#[tokio::test(start_paused = true)]
async fn callers_are_served_in_the_order_they_asked() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = RateLimitLayer::new(Quota::per_second(n(1))).layer(inner);

    svc.clone().oneshot(req("first")).await.unwrap();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        tasks.push(tokio::spawn(svc.clone().oneshot(req(name))));
        tokio::time::sleep(ms(1)).await;
    }
    // A latecomer that asks after c still queues behind it.
    let late = tokio::spawn(svc.clone().oneshot(req("late")));
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    late.await.unwrap().unwrap();

    assert_eq!(arrivals.names(), ["first", "a", "b", "c", "late"]);
    assert_eq!(
        arrivals.times(),
        [secs(0), secs(1), secs(2), secs(3), secs(4)]
    );
}

#[tokio::test(start_paused = true)]
async fn stacks_built_from_one_limiter_share_it() {
    let limiter = Limiter::new(Quota::per_second(n(4)));
    let (a, ha) = mock::pair();
    let (b, hb) = mock::pair();
    let at_a = serve(ha, support::ok);
    let at_b = serve(hb, support::ok);
    let svc_a = RateLimitLayer::from_limiter(limiter.clone()).layer(a);
    let svc_b = RateLimitLayer::from_limiter(limiter).layer(b);

    let start = Instant::now();
    for i in 0..4 {
        svc_a.clone().oneshot(req(format!("a{i}"))).await.unwrap();
        svc_b.clone().oneshot(req(format!("b{i}"))).await.unwrap();
    }
    assert_eq!(start.elapsed(), ms(1750));
    assert_eq!(at_a.times(), [ms(0), ms(500), ms(1000), ms(1500)]);
    assert_eq!(at_b.times(), [ms(250), ms(750), ms(1250), ms(1750)]);
}

/// A timer's own lateness (tokio fires on whole milliseconds) is not a stall: places that do
/// not fall on a millisecond keep their exact schedule, with no drift.
#[tokio::test(start_paused = true)]
async fn timer_rounding_does_not_slow_the_schedule() {
    let limiter = Limiter::new(Quota::per_second(n(3)));
    let start = Instant::now();
    for _ in 0..31 {
        limiter.acquire().await.unwrap();
    }
    // 30 intervals of 333.3 ms: 10 s, give or take the last timer's rounding.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= secs(10) && elapsed < secs(10) + ms(2),
        "{elapsed:?}"
    );
}
