//! Benches of the session layer's per-request work: `BaseUrl::resolve` and `SharedClient`
//! over a no-op service. Run with
//! `cargo bench -p calm-client --bench client -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use calm_client::{BaseUrl, SharedClientLayer};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{Request, Uri};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::{Layer, Service};

fn resolve(c: &mut Criterion) {
    let base = BaseUrl::parse("https://api.example.com/v1/").unwrap();
    let mut group = c.benchmark_group("resolve");
    for (name, uri) in [
        ("path_and_query", "/users/42?page=2&per_page=50"),
        ("bare_word", "users"),
        (
            "absolute_same_origin",
            "https://api.example.com/v1/users/42",
        ),
        ("dotted_path", "/files/v1.2/archive.tar.gz"),
        ("refused_dot_segment", "/a/%2e%2e/b"),
    ] {
        let uri: Uri = uri.parse().unwrap();
        group.bench_function(name, |b| b.iter(|| base.resolve(black_box(&uri))));
    }
    group.bench_function("resolve_str", |b| {
        b.iter(|| base.resolve_str(black_box("users/42?page=2")))
    });
    group.bench_function("parse_base_url", |b| {
        b.iter(|| BaseUrl::parse(black_box("HTTPS://API.example.com:443/v1")))
    });
    group.bench_function("clone_base_url", |b| b.iter(|| black_box(&base).clone()));
    group.finish();
}

/// Polls a future that is ready at once.
fn poll_now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the no-op service is always ready"),
    }
}

fn shared_client(c: &mut Criterion) {
    let noop = tower::service_fn(|req: Request<()>| std::future::ready(Ok::<_, Infallible>(req)));
    let layer = SharedClientLayer::builder("https://api.example.com/v1")
        .bearer_auth("t0k3n")
        .default_header("accept", "application/json")
        .build()
        .unwrap();
    let mut client = layer.layer(noop);
    let mut bare = noop;

    let mut group = c.benchmark_group("shared_client");
    group.bench_function("noop_service_alone", |b| {
        b.iter_batched(
            || {
                Request::get(Uri::from_static("/users/42?page=2"))
                    .body(())
                    .unwrap()
            },
            |req| poll_now(bare.call(req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("call_no_headers", |b| {
        b.iter_batched(
            || {
                Request::get(Uri::from_static("/users/42?page=2"))
                    .body(())
                    .unwrap()
            },
            |req| {
                let _ = poll_now(std::future::poll_fn(|cx| client.poll_ready(cx)));
                poll_now(client.call(req))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("call_with_own_headers", |b| {
        b.iter_batched(
            || {
                Request::get(Uri::from_static("/users/42?page=2"))
                    .header("accept", "text/plain")
                    .header("x-request-id", "abc")
                    .body(())
                    .unwrap()
            },
            |req| {
                let _ = poll_now(std::future::poll_fn(|cx| client.poll_ready(cx)));
                poll_now(client.call(req))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("call_refused", |b| {
        b.iter_batched(
            || {
                Request::get(Uri::from_static("https://evil.example/x"))
                    .body(())
                    .unwrap()
            },
            |req| poll_now(client.call(req)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, resolve, shared_client);
criterion_main!(benches);
