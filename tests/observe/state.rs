//! `Debug` output people can read: relative instants, rounded durations, no internals.

use std::num::NonZeroU32;

use calm::{Backoff, Client, Quota, RetryPolicy};
use tokio::time::Instant;

use crate::support::{ms, per_second, scripted, serial, BASE, TOKEN};

#[tokio::test(start_paused = true)]
async fn a_client_shows_its_base_url_quotas_queue_and_pause_and_no_credentials() {
    let _serial = serial();
    let client = Client::builder(BASE)
        .bearer_auth(TOKEN)
        .rate_limit(per_second(10))
        .rate_limit(Quota::per_hour(NonZeroU32::new(5000).unwrap()))
        .build_with(scripted([]))
        .unwrap();
    assert_eq!(
        format!("{client:?}"),
        r#"Client { base_url: "http://api.test:8080/v1/", quotas: [10/s, 5000/h], queued: 0, paused: no, .. }"#
    );

    client
        .limiter()
        .unwrap()
        .pause_until(Instant::now() + ms(29_800));
    let shown = format!("{client:#?}");
    assert!(shown.contains("paused: 29.8s left"), "{shown}");
    assert!(!shown.contains(TOKEN));

    let plain = Client::builder(BASE).build_with(scripted([])).unwrap();
    assert_eq!(
        format!("{plain:?}"),
        r#"Client { base_url: "http://api.test:8080/v1/", rate_limit: none, .. }"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_shows_instants_relative_to_when_it_was_taken() {
    let _serial = serial();
    let client = Client::builder(BASE)
        .rate_limit(per_second(2))
        .build_with(scripted([]))
        .unwrap();
    client.get("/a").send().await.unwrap();
    client.get("/b").send().await.unwrap(); // waits 500 ms

    let snapshot = client.limiter_snapshot().unwrap();
    let shown = format!("{snapshot:?}");
    assert!(
        shown.starts_with("Snapshot { next_free: in 500ms, paused: no, queued: 0,"),
        "{shown}"
    );
    assert!(shown.contains("waits: 1, total_waited: 500ms,"), "{shown}");
    assert!(
        !shown.contains("tv_sec") && !shown.contains("Instant"),
        "{shown}"
    );

    tokio::time::advance(ms(2_000)).await;
    let later = format!("{:?}", client.limiter_snapshot().unwrap());
    assert!(later.starts_with("Snapshot { next_free: now,"), "{later}");
}

#[tokio::test(start_paused = true)]
async fn stats_show_retries_by_reason_and_waits_to_the_millisecond() {
    let _serial = serial();
    let client = Client::builder(BASE)
        .rate_limit(per_second(3))
        .retry(RetryPolicy::default().backoff(Backoff::none()))
        .build_with(scripted([(503, &[][..]), (503, &[][..])]))
        .unwrap();
    client.get("/a").send().await.unwrap();

    // Three attempts at 3/s: the second and third wait a third of a second each (333 ms on
    // paused time, whose timer wakes on whole milliseconds).
    let shown = format!("{:?}", client.stats());
    assert_eq!(
        shown,
        "Stats { requests: 1, attempts: 3, retries: {\"status 503\": 2}, responses_429: 0, \
         errors: 0, rate_limit_wait: 666ms, rate_limit_waits: 2, redirects: 0, server_pauses: 0, \
         learned_rate: none }"
    );
}

#[tokio::test(start_paused = true)]
async fn an_adaptive_client_shows_its_learned_rate() {
    let _serial = serial();
    let client = Client::builder(BASE)
        .rate_limit(per_second(50))
        .adaptive_rate(calm::ratelimit::Adaptive::starting_at(20.0))
        .build_with(scripted([]))
        .unwrap();
    assert_eq!(
        format!("{client:?}"),
        r#"Client { base_url: "http://api.test:8080/v1/", quotas: [50/s], learned_rate: 20.0/s, queued: 0, paused: no, .. }"#
    );
    assert_eq!(client.stats().learned_rate, Some(20.0));
    let shown = format!("{:?}", client.limiter_snapshot().unwrap());
    assert!(shown.ends_with("learned_rate: 20.0/s }"), "{shown}");
}
