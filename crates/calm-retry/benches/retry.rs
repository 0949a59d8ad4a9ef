//! The success path (no retry needed) over a no-op service: what the retry layer costs when
//! nothing goes wrong.
//!
//! - `bare`: the service alone;
//! - `calm_default`: `RetryLayer` with the default policy (keeps a replayable copy of the
//!   request, deposits into the shared budget, attaches `RetryInfo`);
//! - `calm_no_budget`: `RetryLayer` with `no_budget()` (no budget deposit);
//! - `calm_no_retries`: `RetryLayer` with `max_retries(0)` (no copy kept, budget deposit kept);
//! - `tower_never`: `tower::retry::Retry` with a policy that never retries and never clones;
//! - `tower_never_cloning`: the same, but the policy clones the request as a real one must.
#![allow(missing_docs)]

use std::future::{ready, Ready};

use bytes::Bytes;
use calm_retry::{RetryLayer, RetryPolicy};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use tower::{retry::Policy, BoxError, Layer, Service, ServiceExt};

type Req = Request<Full<Bytes>>;
type Res = Response<Empty<Bytes>>;

fn backend(
) -> impl Service<Req, Response = Res, Error = BoxError, Future = Ready<Result<Res, BoxError>>> + Clone
{
    tower::service_fn(|req: Req| {
        black_box(&req);
        ready(Ok::<_, BoxError>(Response::new(Empty::new())))
    })
}

fn request(body: &Bytes) -> Req {
    let mut req = Request::new(Full::new(body.clone()));
    *req.uri_mut() = http::Uri::from_static("http://api.example.com/v1/items?page=2");
    req.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    req
}

#[derive(Clone)]
struct Never {
    clone: bool,
}

impl Policy<Req, Res, BoxError> for Never {
    type Future = Ready<()>;

    fn retry(&mut self, _req: &mut Req, _result: &mut Result<Res, BoxError>) -> Option<Ready<()>> {
        None
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        if !self.clone {
            return None;
        }
        let mut copy = Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

/// One request through `svc`, polled to completion without a runtime (everything is ready).
fn once<S>(svc: &mut S, req: Req)
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
{
    let svc = svc.ready().now_or_never().unwrap().unwrap();
    let res = svc.call(req).now_or_never().unwrap().unwrap();
    black_box(res);
}

fn success_path(c: &mut Criterion) {
    let body = Bytes::from_static(b"{\"name\":\"calm\"}");
    let mut group = c.benchmark_group("success_path");

    let mut bare = backend();
    group.bench_function("bare", |b| b.iter(|| once(&mut bare, request(&body))));

    let mut calm = RetryLayer::new(RetryPolicy::default())
        .unwrap()
        .layer(backend());
    group.bench_function("calm_default", |b| {
        b.iter(|| once(&mut calm, request(&body)))
    });

    let mut calm_unbudgeted = RetryLayer::new(RetryPolicy::default().no_budget())
        .unwrap()
        .layer(backend());
    group.bench_function("calm_no_budget", |b| {
        b.iter(|| once(&mut calm_unbudgeted, request(&body)))
    });

    let mut calm_off = RetryLayer::new(RetryPolicy::default().max_retries(0))
        .unwrap()
        .layer(backend());
    group.bench_function("calm_no_retries", |b| {
        b.iter(|| once(&mut calm_off, request(&body)))
    });

    let mut tower_never = tower::retry::RetryLayer::new(Never { clone: false }).layer(backend());
    group.bench_function("tower_never", |b| {
        b.iter(|| once(&mut tower_never, request(&body)))
    });

    let mut tower_cloning = tower::retry::RetryLayer::new(Never { clone: true }).layer(backend());
    group.bench_function("tower_never_cloning", |b| {
        b.iter(|| once(&mut tower_cloning, request(&body)))
    });

    group.finish();
}

criterion_group!(benches, success_path);
criterion_main!(benches);
