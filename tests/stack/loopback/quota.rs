//! Against calm-mock's own quota: a client paced at the server's quota is never refused.

use std::time::Duration;

use calm::Registry;
use calm_mock::MockApi;
use http::StatusCode;

use super::get;
use crate::support::per_second;

#[tokio::test]
async fn a_client_at_the_servers_quota_gets_no_429() {
    const QUOTA: u32 = 20;
    let api = MockApi::builder()
        .quota(QUOTA, Duration::from_secs(1))
        .start()
        .await;
    let registry = Registry::new(|builder| builder.rate_limit(per_second(QUOTA)));

    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = registry.get(&api.base_url()).unwrap();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..10 {
                    statuses.push(get(&client, "/v1/items").await.0);
                }
                statuses
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().iter().all(|s| *s == StatusCode::OK));
    }

    assert_eq!(api.request_count(), 40);
    assert_eq!(api.count_429(), 0);
    let stats = registry.get(&api.base_url()).unwrap().stats();
    assert_eq!((stats.requests, stats.attempts), (40, 40));
    assert_eq!(stats.responses_429, 0);
}
