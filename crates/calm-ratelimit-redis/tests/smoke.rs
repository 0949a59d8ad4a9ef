mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use calm_ratelimit::Quota;
use calm_ratelimit_redis::RedisBackend;
use support::RedisServer;
use tokio::time::Instant;

#[tokio::test]
async fn smoke() {
    let redis = RedisServer::start();
    let q = Quota::per_second(NonZeroU32::new(5).unwrap());
    let a = RedisBackend::builder(redis.url(), "smoke").quota(q).limiter().unwrap();
    let b = RedisBackend::builder(redis.url(), "smoke").quota(q).limiter().unwrap();
    let start = Instant::now();
    for i in 0..10 {
        if i % 2 == 0 { a.acquire().await.unwrap() } else { b.acquire().await.unwrap() }
        println!("{i} {:?}", start.elapsed());
    }
    println!("{:?}", a.snapshot());
    println!("{}", redis.command(&["KEYS", "*"]));
    assert!(start.elapsed() >= Duration::from_millis(1790));
}
