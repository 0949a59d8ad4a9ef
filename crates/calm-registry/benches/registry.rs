//! Registry hits: uncontended, and from two threads at once.
#![allow(missing_docs)]

use calm_registry::{BaseUrl, Registry};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;

fn registry() -> Registry<Arc<str>> {
    let registry = Registry::new(|base: &BaseUrl| Arc::from(base.as_str()));
    for i in 0..64 {
        registry
            .get(&format!("https://api{i}.example.com/v1"))
            .unwrap();
    }
    registry
}

fn hits(c: &mut Criterion) {
    let registry = registry();
    let base: BaseUrl = "https://api7.example.com/v1".parse().unwrap();
    let mut group = c.benchmark_group("registry_hit");
    group.bench_function("str/uncontended", |b| {
        b.iter(|| {
            registry
                .get(black_box("https://api7.example.com/v1"))
                .unwrap()
        })
    });
    group.bench_function("base_url/uncontended", |b| {
        b.iter(|| registry.get(black_box(&base)).unwrap())
    });
    group.bench_function("str/2_threads", |b| {
        b.iter_custom(|iters| {
            let other = registry.clone();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stop_other = stop.clone();
            let background = std::thread::spawn(move || {
                while !stop_other.load(std::sync::atomic::Ordering::Relaxed) {
                    black_box(other.get(black_box("https://api7.example.com/v1")).unwrap());
                }
            });
            let elapsed = timed(|| {
                for _ in 0..iters {
                    black_box(
                        registry
                            .get(black_box("https://api7.example.com/v1"))
                            .unwrap(),
                    );
                }
            });
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            background.join().unwrap();
            elapsed
        })
    });
    group.finish();
}

// NOTE: a bench measures the wall clock on purpose; the ban on std's Instant is for library code.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn timed(f: impl FnOnce()) -> std::time::Duration {
    let start = std::time::Instant::now();
    f();
    start.elapsed()
}

criterion_group!(benches, hits);
criterion_main!(benches);
