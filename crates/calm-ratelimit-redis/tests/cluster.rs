//! The multi-quota limiter on a three-node Redis Cluster.

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use calm_ratelimit::Quota;
use calm_ratelimit_redis::RedisBackend;
use support::RedisCluster;
use tokio::time::Instant;

fn n(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[tokio::test]
async fn a_multi_quota_limiter_works_on_a_cluster() {
    let cluster = RedisCluster::start();
    let build = || {
        RedisBackend::cluster_builder(cluster.urls(), "github:token-a")
            .quotas([
                Quota::per_second(n(10)),
                Quota::per_period(n(4), Duration::from_secs(2)).unwrap(),
            ])
            .build()
            .unwrap()
    };
    let backend = build();
    // Every key hashes to one slot: the script may touch them all.
    let slots: Vec<String> = backend
        .keys()
        .iter()
        .map(|key| cluster.command(&["CLUSTER", "KEYSLOT", key]))
        .collect();
    assert!(slots.windows(2).all(|w| w[0] == w[1]), "{slots:?}");

    let (a, b) = (
        calm_ratelimit::Limiter::with_backend(backend),
        calm_ratelimit::Limiter::with_backend(build()),
    );
    let start = Instant::now();
    let mut went = Vec::new();
    for i in 0..5 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        limiter.acquire().await.unwrap();
        went.push(start.elapsed());
    }
    // The tighter quota (4 per 2 s: one every 500 ms) spaces them, across both limiters.
    for (i, at) in went.iter().enumerate() {
        let place = went[0] + ms(500) * i as u32;
        assert!(*at + ms(3) >= place && *at < place + ms(100), "{went:?}");
    }
    assert_eq!(cluster.dbsize_total(), 2);

    // A pause from one reaches the other through the cluster.
    let paused_at = Instant::now();
    a.pause_until(paused_at + ms(500));
    tokio::time::sleep(ms(50)).await;
    b.acquire().await.unwrap();
    assert!(paused_at.elapsed() >= ms(495), "{:?}", paused_at.elapsed());
    let store = b.snapshot().store.unwrap();
    assert_eq!(
        (store.outages, store.fallback_admissions),
        (0, 0),
        "{store:?}"
    );
}
