//! Behaviour of `Registry`: one build per key, shared clones, spellings, removal.

use calm_registry::{BaseUrl, Registry};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

fn counting() -> (Registry<Arc<String>>, Arc<AtomicUsize>) {
    let builds = Arc::new(AtomicUsize::new(0));
    let counter = builds.clone();
    let registry = Registry::new(move |base: &BaseUrl| {
        counter.fetch_add(1, Ordering::SeqCst);
        Arc::new(base.to_string())
    });
    (registry, builds)
}

#[test]
fn equivalent_spellings_share_one_entry() {
    let (registry, builds) = counting();
    let spellings = [
        "https://API.example.com:443/v1",
        "https://api.example.com/v1/",
        "HTTPS://api.EXAMPLE.com/v1",
        "https://api.example.com:443/v1/",
    ];
    let services: Vec<_> = spellings
        .iter()
        .map(|s| registry.get(*s).unwrap())
        .collect();
    for service in &services {
        assert!(Arc::ptr_eq(service, &services[0]));
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(registry.len(), 1);

    let parsed: BaseUrl = "https://api.example.com/v1".parse().unwrap();
    assert!(Arc::ptr_eq(&registry.get(&parsed).unwrap(), &services[0]));
    assert_eq!(builds.load(Ordering::SeqCst), 1);
}

#[test]
fn different_base_urls_get_different_services() {
    let (registry, builds) = counting();
    let a = registry.get("https://api.example.com/v1").unwrap();
    let b = registry.get("https://api.example.com/v2").unwrap();
    let c = registry.get("http://api.example.com/v1").unwrap();
    let d = registry.get("https://api.example.com:8443/v1").unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 4);
    assert_eq!(registry.len(), 4);
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    let mut keys: Vec<String> = registry.keys().iter().map(ToString::to_string).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "http://api.example.com/v1/",
            "https://api.example.com/v1/",
            "https://api.example.com/v2/",
            "https://api.example.com:8443/v1/",
        ]
    );
}

#[test]
fn invalid_base_urls_are_errors_and_build_nothing() {
    let (registry, builds) = counting();
    for bad in [
        "",
        "api.example.com",
        "ftp://api.example.com",
        "https://user:pw@api.example.com",
        "https://api.example.com/?q=1",
    ] {
        assert!(registry.get(bad).is_err(), "{bad:?} should be refused");
        assert!(registry.remove(bad).is_err());
    }
    assert_eq!(builds.load(Ordering::SeqCst), 0);
    assert!(registry.is_empty());
}

#[test]
fn factory_runs_once_when_many_threads_ask_at_once() {
    let builds = Arc::new(AtomicUsize::new(0));
    let counter = builds.clone();
    let registry = Registry::new(move |base: &BaseUrl| {
        counter.fetch_add(1, Ordering::SeqCst);
        // A slow factory widens the window in which other threads ask for the same key.
        let mut spin = 0u64;
        for i in 0..200_000u64 {
            spin = spin.wrapping_add(i);
        }
        std::hint::black_box(spin);
        Arc::new(base.to_string())
    });
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let registry = registry.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                // Half the threads use another spelling of the same base URL.
                let spelling = if i % 2 == 0 {
                    "https://api.example.com/v1"
                } else {
                    "https://API.example.com:443/v1/"
                };
                registry.get(spelling).unwrap()
            })
        })
        .collect();
    let services: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    for service in &services {
        assert!(Arc::ptr_eq(service, &services[0]));
    }
}

#[test]
fn get_or_insert_with_only_builds_when_missing() {
    let (registry, builds) = counting();
    let first = registry
        .get_or_insert_with("https://a.example", |_| Arc::new("custom".to_owned()))
        .unwrap();
    assert_eq!(*first, "custom");
    let second = registry
        .get_or_insert_with("https://a.example/", |_| Arc::new("other".to_owned()))
        .unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert!(Arc::ptr_eq(
        &first,
        &registry.get("https://A.example").unwrap()
    ));
    assert_eq!(builds.load(Ordering::SeqCst), 0);
}

#[test]
fn remove_forgets_the_entry_and_its_spellings() {
    let (registry, builds) = counting();
    let first = registry.get("https://API.example.com").unwrap();
    let removed = registry.remove("https://api.example.com/").unwrap();
    assert!(Arc::ptr_eq(&first, &removed.unwrap()));
    assert!(registry.is_empty());
    assert!(registry
        .remove("https://api.example.com/")
        .unwrap()
        .is_none());

    // The old spelling must not resurrect the removed service.
    let again = registry.get("https://API.example.com").unwrap();
    assert!(!Arc::ptr_eq(&first, &again));
    assert_eq!(builds.load(Ordering::SeqCst), 2);
}

#[test]
fn clones_share_entries() {
    let (registry, builds) = counting();
    let clone = registry.clone();
    let a = registry.get("https://api.example.com").unwrap();
    let b = clone.get("https://api.example.com").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(clone.len(), 1);
    let debug = format!("{registry:?}");
    assert!(debug.contains("https://api.example.com/"), "{debug}");
}

#[test]
fn a_panicking_factory_does_not_poison_the_key() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let registry = Registry::new(move |base: &BaseUrl| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("first build fails");
        }
        base.to_string()
    });
    let clone = registry.clone();
    let failed =
        std::thread::spawn(move || clone.get("https://api.example.com").map(|_| ())).join();
    assert!(failed.is_err());
    assert_eq!(
        registry.get("https://api.example.com").unwrap(),
        "https://api.example.com/"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

/// Issue 15: every spelling of one API is one key.
#[test]
fn twenty_equivalent_spellings_are_one_entry() {
    let (registry, builds) = counting();
    let spellings = [
        "https://api.example.com/v1/~user",
        "https://api.example.com/v1/%7Euser",
        "https://api.example.com/v1/%7euser/",
        "https://api.example.com/%76%31/~user",
        "https://api.example.com/v%31/%7E%75ser",
        "HTTPS://API.EXAMPLE.COM/v1/~user",
        "https://Api.Example.Com/v1/~user/",
        "https://api.example.com:443/v1/~user",
        "https://api.example.com:0443/v1/~user",
        "https://api.example.com:000443/v1/~user",
        "https://api.example.com:/v1/~user",
        "hTTpS://api.example.com:443/%76%31/%7e%75%73%65%72/",
        "https://api.example.com/%76%31/%7E%75%73%65%72",
        "https://API.example.com:0443/%761/~user",
        "https://api.EXAMPLE.com/v1/%7euser",
        "https://api.example.com/%76%31/%7euser/",
        "https://api.example.com:00443/v%31/~user",
        "HTTPS://API.EXAMPLE.COM:443/v1/~user/",
        "https://api.example.com/v1/~%75ser",
        "https://api.example.com/v1/~us%65r/",
    ];
    assert_eq!(spellings.len(), 20);
    for spelling in spellings {
        registry.get(spelling).unwrap();
        // A hit through the remembered spelling too.
        registry.get(spelling).unwrap();
    }
    assert_eq!(registry.len(), 1);
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(
        registry.keys()[0].as_str(),
        "https://api.example.com/v1/~user/"
    );

    for group in [
        &[
            "http://127.0.0.1:8080/",
            "http://127.1:8080",
            "http://0x7f.0.0.1:08080",
            "http://2130706433:8080",
        ][..],
        &[
            "https://bücher.example/v1",
            "https://BÜCHER.example/v1/",
            "https://xn--bcher-kva.example/v1",
            "https://XN--BCHER-KVA.example:0443/%76%31",
        ][..],
        &[
            "https://h/a%2fb",
            "https://h/a%2Fb/",
            "https://H:443/a%2f%62",
        ][..],
    ] {
        let (registry, builds) = counting();
        for spelling in group {
            registry.get(*spelling).unwrap();
        }
        assert_eq!(registry.len(), 1, "{group:?}");
        assert_eq!(builds.load(Ordering::SeqCst), 1, "{group:?}");
    }
}

/// The alias cache stays bounded however many spellings a registry is asked with.
#[test]
fn many_spellings_keep_the_alias_cache_bounded() {
    let (registry, builds) = counting();
    let first = registry.get("https://api.example.com/v1").unwrap();
    for i in 0..20_000u32 {
        // Each spelling differs: a zero-padded port and a mix of escaped letters and case.
        let port = format!("{:0>width$}", 443, width = 3 + (i % 13) as usize);
        let host: String = "api.example.com"
            .chars()
            .enumerate()
            .map(|(n, c)| {
                if i >> (n % 16) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let spelling = format!("https://{host}:{port}/v1{}", "/".repeat(i as usize % 2));
        let service = registry.get(&spelling).unwrap();
        assert!(Arc::ptr_eq(&service, &first));
    }
    assert_eq!(registry.len(), 1);
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert!(
        registry.cached_spellings() <= calm_registry::MAX_SPELLINGS_PER_KEY,
        "{} spellings cached",
        registry.cached_spellings()
    );

    // Long spellings are served but not remembered.
    let long = format!("https://api.example.com:{}443/v1", "0".repeat(10));
    let (fresh, _) = counting();
    let padded = format!("https://api.example.com/v1/{}", "x".repeat(5000));
    fresh.get(&padded).unwrap();
    fresh.get(&padded).unwrap();
    assert_eq!(fresh.cached_spellings(), 0);
    assert!(Arc::ptr_eq(&registry.get(&long).unwrap(), &first));

    // `remove` forgets the remembered spellings too.
    registry.remove("https://api.example.com/v1").unwrap();
    assert_eq!(registry.cached_spellings(), 0);
    assert!(registry.is_empty());
}
