//! Per-request overhead of the `calm::Client` facade over a no-op service.
//!
//! Run with: `cargo bench -p calm --bench client [-- CRITERION OPTIONS]`, for example
//! `-- --warm-up-time 1 --measurement-time 3`.
//!
//! The backend answers `200` with an empty body at once (`service_fn` returning a ready
//! future), so what is measured is the facade itself: the `RequestBuilder`, the boxed stack,
//! default headers, the retry and rate-limit layers and the stats recorder. Each client is
//! measured two ways: `send` is `client.get("/x").send()`, the newcomer's path; `call` is
//! `Service::call` on a ready clone with an absolute request (from a parsed `Uri`), the tower
//! user's path.
//! `service_fn/call` is the bare backend called the same way, the floor.
//!
//! | client | built with |
//! |---|---|
//! | `defaults` | `Client::builder(..).build_with(..)`: retries on, no rate limit |
//! | `rate_limited` | `.rate_limit(10_000_000/s)`: retries on, a limiter that never waits |
//! | `no_retries` | `.no_retries()`: neither |
//!
//! The `clone` group measures one `Client` clone and drop, over the no-op service and over
//! calm's real transport (built, never connected).
//!
//! Every request runs on one current-thread tokio runtime; each sample is one `block_on` of
//! a loop of requests timed inside it (`iter_custom`), so the cost of entering the runtime is
//! not counted.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use calm::{Body, Client, ClientBuilder, Quota};
use criterion::{BenchmarkId, Criterion, Throughput};
use http::{Request, Response, Uri};
use tokio::runtime::Runtime;
use tower::{service_fn, Service, ServiceExt};

const BASE: &str = "http://api.test/v1/";
const PATH: &str = "/x";
const URI: &str = "http://api.test/v1/x";

/// Wall-clock time.
///
/// NOTE: a bench measures real elapsed time, so it needs `std::time::Instant`; the ban in
/// `.clippy.toml` keeps library code on tokio's pausable clock and does not apply here.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn no_op(_request: Request<Body>) -> Ready<Result<Response<Body>, Infallible>> {
    ready(Ok(Response::new(Body::empty())))
}

fn request(uri: &Uri) -> Request<Body> {
    Request::get(uri.clone())
        .body(Body::empty())
        .expect("a valid request")
}

/// Times `iters` calls of `one`, one after another, inside one `block_on`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, mut one: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt.block_on(async {
        let start = now();
        for _ in 0..iters {
            one().await;
        }
        start.elapsed()
    })
}

/// How one measured client is configured, on top of `Client::builder(BASE)`.
type Configure = fn(ClientBuilder) -> ClientBuilder;

fn per_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let uri: Uri = URI.parse().expect("a valid URI");

    let mut group = c.benchmark_group("per_request");
    group.throughput(Throughput::Elements(1));

    let backend = service_fn(no_op);
    group.bench_function(BenchmarkId::new("service_fn", "call"), |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let mut clone = backend;
                let ready = clone.ready().await.expect("always ready");
                let response = ready.call(request(&uri)).await.expect("never fails");
                black_box(response);
            })
        });
    });

    let clients: [(&str, Configure); 3] = [
        ("defaults", |builder| builder),
        ("rate_limited", |builder| builder.rate_limit(huge_quota())),
        ("no_retries", |builder| builder.no_retries()),
    ];
    for (name, configure) in clients {
        let client = configure(Client::builder(BASE))
            .build_with(service_fn(no_op))
            .expect("a valid client");
        let first = rt.block_on(client.get(PATH).send()).expect("a response");
        assert_eq!(first.status(), 200);

        group.bench_function(BenchmarkId::new(name, "send"), |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    let response = client.get(PATH).send().await.expect("a response");
                    black_box(response);
                })
            });
        });

        group.bench_function(BenchmarkId::new(name, "call"), |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    let mut clone = client.clone();
                    // NOTE: `Client` is a `Service` for several body types, so `ready` needs
                    // to be told which.
                    let ready = ServiceExt::<Request<Body>>::ready(&mut clone)
                        .await
                        .expect("always ready");
                    let response = ready.call(request(&uri)).await.expect("a response");
                    black_box(response);
                })
            });
        });
    }
    group.finish();
}

/// What one `Client` clone costs (and its drop): `send` and `call` clone the whole stack, so
/// with calm's real transport underneath this is part of every request.
fn clone(c: &mut Criterion) {
    let mut group = c.benchmark_group("clone");
    let over_no_op = Client::builder(BASE)
        .build_with(service_fn(no_op))
        .expect("a valid client");
    group.bench_function("over_service_fn", |b| {
        b.iter(|| black_box(over_no_op.clone()));
    });
    // NOTE: `build` makes calm's hyper-util + rustls transport; no connection is opened.
    let over_transport = Client::builder(BASE)
        .rate_limit(huge_quota())
        .build()
        .expect("a valid client");
    group.bench_function("over_transport", |b| {
        b.iter(|| black_box(over_transport.clone()));
    });
    group.finish();
}

/// Far above what the loop can reach, so the limiter never makes a request wait.
fn huge_quota() -> Quota {
    Quota::per_second(NonZeroU32::new(10_000_000).expect("non-zero"))
}

// NOTE: what `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`
// the workspace's `missing_docs` lint would flag.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    per_request(&mut criterion);
    clone(&mut criterion);
    criterion.final_summary();
}
