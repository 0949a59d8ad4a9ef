//! The cost of taking a place when the quota does not bind (calm's limiter next to governor's
//! `check()`), uncontended and from 2 threads, and the layer's overhead over a no-op service.
//! Run with
//! `cargo bench -p calm-ratelimit --bench ratelimit -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::future::{Future, Ready};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use calm_ratelimit::{Limiter, Quota, RateLimitLayer};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service};

/// So large it never binds: every call finds a free place.
fn calm_limiter() -> Limiter {
    Limiter::new(Quota::per_second(NonZeroU32::MAX).burst(NonZeroU32::MAX))
}

type Governor = governor::DefaultDirectRateLimiter;

fn governor_limiter() -> Governor {
    governor::RateLimiter::direct(governor::Quota::per_second(NonZeroU32::MAX))
}

fn take_place(c: &mut Criterion) {
    let mut group = c.benchmark_group("take_place");

    let calm = calm_limiter();
    group.bench_function("calm_try_acquire", |b| {
        b.iter(|| black_box(calm.try_acquire()).unwrap())
    });
    let calm = calm_limiter();
    let mut cx = Context::from_waker(Waker::noop());
    group.bench_function("calm_acquire_poll", |b| {
        b.iter(|| {
            let acquire = pin!(calm.acquire());
            assert!(acquire.poll(&mut cx).is_ready());
        })
    });
    let gov = governor_limiter();
    group.bench_function("governor_check", |b| {
        b.iter(|| black_box(gov.check()).unwrap())
    });
    // The same, on the clock calm must use (std's monotonic clock, which tokio's follows
    // unless paused) instead of governor's default TSC clock.
    let gov_std = governor::RateLimiter::direct_with_clock(
        governor::Quota::per_second(NonZeroU32::MAX),
        governor::clock::MonotonicClock,
    );
    group.bench_function("governor_check_std_clock", |b| {
        b.iter(|| black_box(gov_std.check()).unwrap())
    });
    group.bench_function("tokio_instant_now", |b| {
        b.iter(|| black_box(Instant::now()))
    });

    contended(&mut group, "calm_try_acquire_2_threads", {
        let calm = Arc::new(calm_limiter());
        move || black_box(calm.try_acquire()).unwrap()
    });
    contended(&mut group, "governor_check_2_threads", {
        let gov = Arc::new(governor_limiter());
        move || black_box(gov.check()).unwrap()
    });
    group.finish();
}

/// Time per call while 2 threads call `op` on one shared limiter at once.
fn contended<F>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    op: F,
) where
    F: Fn() + Clone + Send + 'static,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let op = op.clone();
                    std::thread::spawn(move || {
                        for _ in 0..iters {
                            op();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let elapsed: Duration = start.elapsed();
            elapsed
        })
    });
}

type Noop = tower::util::ServiceFn<fn(Request<()>) -> Ready<Result<Response<()>, Infallible>>>;

fn noop() -> Noop {
    fn answer(_: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
        std::future::ready(Ok(Response::new(())))
    }
    tower::service_fn(answer as fn(_) -> _)
}

/// One request through `svc`, driven by hand: everything is ready at once.
fn drive<S>(svc: &mut S, cx: &mut Context<'_>)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        other => panic!("not ready: {:?}", other.map(|r| r.err())),
    }
    let future = pin!(svc.call(Request::new(())));
    match future.poll(cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        _ => panic!("no response"),
    }
}

fn layer_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer");
    let mut cx = Context::from_waker(Waker::noop());
    let huge = Quota::per_second(NonZeroU32::MAX).burst(NonZeroU32::MAX);

    let mut bare = noop();
    group.bench_function("noop_service", |b| b.iter(|| drive(&mut bare, &mut cx)));
    let mut limited = RateLimitLayer::new(huge)
        .server_hints(true)
        .host("api.example.com")
        .layer(noop());
    group.bench_function("ratelimit_over_noop", |b| {
        b.iter(|| drive(&mut limited, &mut cx))
    });
    let mut no_hints = RateLimitLayer::new(huge).layer(noop());
    group.bench_function("ratelimit_over_noop_no_hints", |b| {
        b.iter(|| drive(&mut no_hints, &mut cx))
    });
    group.finish();
}

criterion_group!(benches, take_place, layer_overhead);
criterion_main!(benches);
