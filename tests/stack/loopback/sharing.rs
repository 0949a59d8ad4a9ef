//! Registry clients of one base URL share one pool, one rate budget and one retry budget;
//! two base URLs share nothing.

use calm::retry::{RetryBudget, StopReason};
use calm::{Registry, RetryPolicy};
use calm_mock::{MockApi, Reply};

use super::get;
use crate::support::{immediate_retries, per_second, secs};

#[tokio::test]
async fn registry_clients_of_one_base_url_share_one_connection_pool() {
    let api = MockApi::start().await;
    let registry = Registry::new(|builder| builder.rate_limit(per_second(1000)));
    let base = api.base_url();

    let a = registry.get(&base).unwrap();
    let b = registry.get(base.trim_end_matches('/')).unwrap();
    let c = a.clone();
    for client in [&a, &b, &c] {
        for _ in 0..2 {
            assert_eq!(
                get(client, "/v1/items").await,
                (http::StatusCode::OK, "ok".into())
            );
        }
    }
    assert_eq!(api.request_count(), 6);
    assert_eq!(api.connections(), 1);
    assert_eq!(registry.len(), 1);
    assert_eq!(b.stats().requests, 6);

    // A client from another registry is another stack, with a pool of its own.
    let stranger = Registry::new(|builder| builder).get(&base).unwrap();
    get(&stranger, "/v1/items").await;
    assert_eq!(api.connections(), 2);
}

#[tokio::test]
async fn registry_clients_of_one_base_url_share_one_rate_budget() {
    let api = MockApi::start().await;
    let registry = Registry::new(|builder| builder.rate_limit(per_second(2)));
    let a = registry.get(&api.base_url()).unwrap();
    let b = registry.get(&api.base_url()).unwrap();
    let c = registry.get(&api.base_url()).unwrap();
    assert!(a.limiter().unwrap().ptr_eq(b.limiter().unwrap()));
    assert!(a.limiter().unwrap().ptr_eq(c.limiter().unwrap()));

    let (ra, rb, rc) = tokio::join!(get(&a, "/a"), get(&b, "/b"), get(&c, "/c"));
    assert_eq!([ra.0, rb.0, rc.0], [200; 3]);
    assert_eq!(api.request_count(), 3);
    // Three requests asked at once for one budget of 2 per second: two had to wait.
    assert_eq!(a.limiter_snapshot().unwrap().waits, 2);
    for client in [&a, &b, &c] {
        assert_eq!(client.stats().rate_limit_waits, 2);
    }
}

#[tokio::test]
async fn registry_clients_of_one_base_url_share_one_retry_budget() {
    let api = MockApi::start().await;
    api.script("/down", [Reply::status(503)]);
    // Each request deposits one token and each retry takes two, with nothing in reserve: a
    // request can retry only on what another request of the same budget deposited.
    let registry = Registry::new(|builder| {
        let budget = RetryBudget::new(secs(60), 0, 0.5).expect("a valid budget");
        builder.retry(immediate_retries().budget(budget))
    });
    let a = registry.get(&api.base_url()).unwrap();
    let b = registry.get(&api.base_url()).unwrap();

    let first = a.get("/down").send().await.unwrap();
    let info = first.retry_info().unwrap();
    assert_eq!(
        (info.attempts(), info.stop_reason()),
        (1, &StopReason::BudgetExhausted)
    );
    let second = b.get("/down").send().await.unwrap();
    let info = second.retry_info().unwrap();
    assert_eq!(
        (info.attempts(), info.stop_reason()),
        (2, &StopReason::BudgetExhausted)
    );
    assert_eq!(api.request_count(), 3);
}

#[tokio::test]
async fn two_base_urls_are_independent() {
    let (one, two) = (MockApi::start().await, MockApi::start().await);
    one.script("/limited", [Reply::status(429).header("retry-after", "2")]);
    let registry = Registry::new(|builder| builder.rate_limit(per_second(1000)));
    let c1 = registry.get(&one.base_url()).unwrap();
    let c2 = registry.get(&two.base_url()).unwrap();
    assert_eq!(registry.len(), 2);
    assert!(!c1.limiter().unwrap().ptr_eq(c2.limiter().unwrap()));

    get(&c1, "/x").await;
    get(&c1, "/x").await;
    get(&c2, "/x").await;
    assert_eq!((one.request_count(), two.request_count()), (2, 1));
    assert_eq!((one.connections(), two.connections()), (1, 1));
    assert_eq!((c1.stats().requests, c2.stats().requests), (2, 1));

    // A pause the first server asks for holds nobody back at the second.
    let limited = c1
        .get("/limited")
        .retry(RetryPolicy::default().max_retries(0))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let pause_end = c1
        .limiter_snapshot()
        .unwrap()
        .paused_until
        .expect("the first limiter is paused");
    assert_eq!(c2.limiter_snapshot().unwrap().paused_until, None);
    get(&c2, "/y").await;
    let arrived = two.requests().last().unwrap().at;
    assert!(
        arrived < pause_end,
        "the second API waited for the first one's pause"
    );
}
