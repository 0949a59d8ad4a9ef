//! An adaptive rate over the Redis backend: the quota and pauses stay in Redis, shared; the
//! learned rate is this process's own and paces it on top.
//!
//! Real time, about 6 s, against its own redis-server and an in-memory API that allows 20
//! requests per fixed second and answers a bare 429 above it.

mod support;

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calm_ratelimit::{Adaptive, Limiter, Quota, RateLimitLayer};
use calm_ratelimit_redis::RedisBackend;
use http::{Request, Response, StatusCode};
use support::RedisServer;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

const SERVER_LIMIT: usize = 20;

/// Counts of what the API answered.
#[derive(Default)]
struct Served {
    requests: AtomicUsize,
    refused: AtomicUsize,
}

/// An API allowing `SERVER_LIMIT` requests per fixed second from `start`, 429 above.
fn api(
    served: Arc<Served>,
) -> impl tower::Service<Request<()>, Response = Response<()>, Error = Infallible, Future = impl Send>
       + Clone {
    let start = Instant::now();
    let window = Arc::new(Mutex::new((0u64, 0usize)));
    tower::service_fn(move |_req: Request<()>| {
        let second = start.elapsed().as_secs();
        let mut window = window.lock().unwrap();
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 += 1;
        served.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(());
        if window.1 > SERVER_LIMIT {
            served.refused.fetch_add(1, Ordering::Relaxed);
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        }
        async move { Ok(response) }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_learns_the_api_limit_under_the_shared_quota() {
    let redis = RedisServer::start();
    let backend = RedisBackend::builder(redis.url(), "adaptive")
        .quota(Quota::per_second(NonZeroU32::new(200).unwrap()))
        .build()
        .unwrap();
    let limiter = Limiter::adaptive_over(backend, Adaptive::starting_at(80.0)).unwrap();
    let served = Arc::new(Served::default());
    let svc = RateLimitLayer::from_limiter(limiter.clone())
        .server_hints(true)
        .layer(api(Arc::clone(&served)));

    let until = Instant::now() + Duration::from_secs(6);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                while Instant::now() < until {
                    svc.clone().oneshot(Request::new(())).await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (requests, refused) = (
        served.requests.load(Ordering::Relaxed),
        served.refused.load(Ordering::Relaxed),
    );
    for task in tasks {
        task.await.unwrap();
    }
    let requests = served.requests.load(Ordering::Relaxed) - requests;
    let refused = served.refused.load(Ordering::Relaxed) - refused;
    let rate = requests as f64 / 3.0;
    let snapshot = limiter.snapshot();
    println!(
        "over Redis: {rate:.1}/s sent in the last 3 s against 20/s, {refused} refused, \
         learned {:?}, {snapshot:?}",
        snapshot.learned_rate
    );
    assert!((14.0..=24.0).contains(&rate), "{rate}/s");
    assert!(
        (refused as f64) < 0.15 * requests as f64,
        "{refused} of {requests}"
    );
    let learned = snapshot.learned_rate.unwrap();
    assert!((8.0..=30.0).contains(&learned), "{learned}");
    // Every place was still taken in Redis.
    let store = snapshot.store.expect("a Redis backend");
    assert!(store.round_trips > 0, "{store:?}");
}
