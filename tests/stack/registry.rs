//! `calm::Registry` and `calm::shared`: one client per normalized base URL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use calm::retry::{RetryBudget, StopReason};
use calm::{BaseUrl, Client, Registry};
use tokio::time::Instant;

use crate::support::{immediate_retries, per_second, secs, Answer, Backend};

/// A registry whose clients (1 request per second) share `backend`, counting factory runs.
fn registry(backend: &Backend) -> (Registry, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = Registry::with_factory({
        let (backend, runs) = (backend.clone(), Arc::clone(&runs));
        move |base| {
            runs.fetch_add(1, Ordering::SeqCst);
            Client::builder(base)
                .retry(immediate_retries())
                .rate_limit(per_second(1))
                .build_with(backend.clone())
        }
    });
    (registry, runs)
}

#[tokio::test(start_paused = true)]
async fn one_client_per_normalized_base_url() {
    let backend = Backend::default();
    let (registry, runs) = registry(&backend);

    let a = registry.get("http://API.test:80/v1").unwrap();
    let b = registry.get("http://api.test/v1/").unwrap();
    let c = registry
        .get(&BaseUrl::parse("http://api.test/v1").unwrap())
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.keys()[0].as_str(), "http://api.test/v1/");
    assert!(a.limiter().unwrap().ptr_eq(b.limiter().unwrap()));
    assert!(a.limiter().unwrap().ptr_eq(c.limiter().unwrap()));

    a.get("/x").send().await.unwrap();
    assert_eq!(b.stats().requests, 1);
    assert_eq!(c.stats().requests, 1);
}

#[tokio::test(start_paused = true)]
async fn clients_of_one_base_url_share_one_rate_budget() {
    let backend = Backend::default();
    let (registry, _) = registry(&backend);
    let a = registry.get("http://api.test/v1").unwrap();
    let b = registry.get("http://api.test/v1").unwrap();

    let started = Instant::now();
    let (ra, rb) = tokio::join!(a.get("/a").send(), b.get("/b").send());
    assert_eq!(ra.unwrap().status(), 200);
    assert_eq!(rb.unwrap().status(), 200);
    let arrivals = backend.arrivals();
    assert_eq!(arrivals[0].at, started);
    assert_eq!(arrivals[1].at, started + secs(1));
    assert_eq!(a.limiter_snapshot().unwrap().waits, 1);
}

#[tokio::test(start_paused = true)]
async fn two_base_urls_are_independent() {
    let backend = Backend::default();
    let (registry, runs) = registry(&backend);
    let a = registry.get("http://api.test/v1").unwrap();
    let b = registry.get("http://other.test/v1").unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(registry.len(), 2);
    assert!(!a.limiter().unwrap().ptr_eq(b.limiter().unwrap()));

    // Both go at once: neither waits for the other's place.
    let started = Instant::now();
    let (ra, rb) = tokio::join!(a.get("/a").send(), b.get("/b").send());
    ra.unwrap();
    rb.unwrap();
    let arrivals = backend.arrivals();
    assert!(arrivals.iter().all(|a| a.at == started));
    let hosts: Vec<_> = arrivals.iter().map(|a| a.uri.host().unwrap()).collect();
    assert!(hosts.contains(&"api.test") && hosts.contains(&"other.test"));
    assert_eq!((a.stats().requests, b.stats().requests), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn clients_of_one_base_url_share_one_retry_budget() {
    // Each request deposits one token, each retry takes two, and nothing is in reserve: a
    // request can retry only on what another request of the same budget deposited.
    let backend = Backend::new([Answer::status(503)]);
    let registry = Registry::with_factory({
        let backend = backend.clone();
        move |base| {
            let budget = RetryBudget::new(secs(60), 0, 0.5).expect("a valid budget");
            Client::builder(base)
                .retry(immediate_retries().budget(budget))
                .build_with(backend.clone())
        }
    });
    let attempts = |response: calm::Response| {
        let info = response.retry_info().unwrap();
        (info.attempts(), *info.stop_reason())
    };

    let a = registry.get("http://api.test/v1").unwrap();
    let b = registry.get("http://api.test/v1").unwrap();
    let other = registry.get("http://other.test/v1").unwrap();

    let first = attempts(a.get("/x").send().await.unwrap());
    assert_eq!(first, (1, StopReason::BudgetExhausted));
    let second = attempts(b.get("/x").send().await.unwrap());
    assert_eq!(second, (2, StopReason::BudgetExhausted));
    // Another base URL has a budget of its own, with nothing deposited yet.
    let third = attempts(other.get("/x").send().await.unwrap());
    assert_eq!(third, (1, StopReason::BudgetExhausted));
    assert_eq!(backend.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_configuration_closure_runs_once_per_key_under_contention() {
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = Registry::new({
        let runs = Arc::clone(&runs);
        move |builder| {
            runs.fetch_add(1, Ordering::SeqCst);
            builder.rate_limit(per_second(10))
        }
    });
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let spelling = if i % 2 == 0 {
                    "https://API.example.com:443/v1"
                } else {
                    "https://api.example.com/v1/"
                };
                registry.get(spelling).unwrap()
            })
        })
        .collect();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.unwrap());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(registry.len(), 1);
    let first = clients[0].limiter().unwrap();
    assert!(clients.iter().all(|c| c.limiter().unwrap().ptr_eq(first)));
}

#[tokio::test(start_paused = true)]
async fn remove_forgets_a_client_and_clients_handed_out_keep_working() {
    let backend = Backend::default();
    let (registry, runs) = registry(&backend);
    let old = registry.get("http://api.test/v1").unwrap();

    let removed = registry
        .remove("http://API.test/v1/")
        .unwrap()
        .expect("an entry");
    assert!(removed.limiter().unwrap().ptr_eq(old.limiter().unwrap()));
    assert!(registry.is_empty());
    assert!(registry.remove("http://api.test/v1").unwrap().is_none());

    let new = registry.get("http://api.test/v1").unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(!new.limiter().unwrap().ptr_eq(old.limiter().unwrap()));
    assert_eq!(old.get("/x").send().await.unwrap().status(), 200);
    assert_eq!(backend.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn calm_shared_hands_out_the_global_registrys_client() {
    // NOTE: the only test of this binary that touches the process-wide registry.
    let backend = Backend::default();
    let installed = Registry::with_factory({
        let backend = backend.clone();
        move |base| {
            Client::builder(base)
                .retry(immediate_retries())
                .build_with(backend.clone())
        }
    });
    Registry::set_global(installed).expect("nothing used the global registry before");
    assert!(Registry::set_global(Registry::new(|b| b)).is_err());

    let a = calm::shared("http://shared.test/v1").unwrap();
    let b = calm::shared("http://SHARED.test:80/v1/").unwrap();
    a.get("/x").send().await.unwrap();
    assert_eq!(b.stats().requests, 1);
    assert_eq!(b.base_url().as_str(), "http://shared.test/v1/");
    assert_eq!(Registry::global().len(), 1);
    assert_eq!(backend.arrivals()[0].uri, "http://shared.test/v1/x");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_pauses_every_user_of_the_base_url() {
    let backend = Backend::new([Answer::status(429).header("retry-after", "3"), Answer::ok()]);
    let (registry, _) = registry(&backend);
    let a = registry.get("http://api.test/v1").unwrap();
    let b = registry.get("http://api.test/v1").unwrap();

    let started = Instant::now();
    let refused = a
        .get("/x")
        .retry(immediate_retries().max_retries(0))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let snapshot = b.limiter_snapshot().unwrap();
    assert_eq!(snapshot.paused_until, Some(started + secs(3)));

    // Another user's request, made during the pause, goes when it ends.
    b.get("/y").send().await.unwrap();
    let arrivals = backend.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert_eq!(arrivals[1].at, started + secs(3));
    assert_eq!(a.stats().responses_429, 1);
}
