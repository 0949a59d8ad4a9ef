use std::time::{Duration, SystemTime, UNIX_EPOCH};

use calm_mock::{MockApi, QuotaHeaders, Reply};

use crate::support::{client, get, header};

fn number(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

#[tokio::test]
async fn over_the_limit_gets_429_with_retry_after_and_x_ratelimit_headers() {
    let api = MockApi::builder()
        .quota(3, Duration::from_secs(60))
        .start()
        .await;
    // NOTE: refused requests do not use up replies.
    api.script("/q", [Reply::status(201), Reply::status(202)]);
    let client = client();
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(get(&client, &api.url("/q")).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses, [201, 202, 202, 429, 429]);
    for (a, remaining) in answers.iter().zip(["2", "1", "0", "0", "0"]) {
        assert_eq!(header(a, "x-ratelimit-limit"), "3");
        assert_eq!(header(a, "x-ratelimit-remaining"), remaining);
        let reset = header(a, "x-ratelimit-reset");
        let ms = number(reset.strip_suffix("ms").expect("reset ends in ms"));
        assert!((1..=60_000).contains(&ms), "{reset}");
    }
    for a in &answers[..3] {
        assert!(!a.headers.contains_key("retry-after"));
    }
    for a in &answers[3..] {
        let secs = number(header(a, "retry-after"));
        assert!((1..=60).contains(&secs), "{secs}");
    }
    assert_eq!(api.count_429(), 2);
    assert_eq!(api.request_count(), 5, "refused requests are recorded too");
}

#[tokio::test]
async fn epoch_style_gives_the_reset_as_unix_seconds() {
    let api = MockApi::builder()
        .quota(1, Duration::from_secs(30))
        .quota_headers(QuotaHeaders::XRateLimitEpoch)
        .start()
        .await;
    let client = client();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ok = get(&client, &api.url("/")).await;
    let refused = get(&client, &api.url("/")).await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!((ok.status.as_u16(), refused.status.as_u16()), (200, 429));
    for a in [&ok, &refused] {
        let reset = number(header(a, "x-ratelimit-reset"));
        assert!(
            before <= reset && reset <= after + 31,
            "{before} {reset} {after}"
        );
        assert_eq!(header(a, "x-ratelimit-limit"), "1");
    }
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    assert!((1..=30).contains(&number(header(&refused, "retry-after"))));
}

/// Parses `"default";r=3;t=1` style items into (key, value) pairs after the name.
fn params(field: &str) -> Vec<(String, u64)> {
    let mut parts = field.split(';');
    assert_eq!(parts.next(), Some("\"default\""), "{field}");
    parts
        .map(|p| {
            let (k, v) = p.split_once('=').expect("key=value");
            (k.to_owned(), number(v))
        })
        .collect()
}

#[tokio::test]
async fn ietf_style_uses_ratelimit_and_ratelimit_policy() {
    let api = MockApi::builder()
        .quota(2, Duration::from_secs(60))
        .quota_headers(QuotaHeaders::Ietf)
        .start()
        .await;
    let client = client();
    let answers = [
        get(&client, &api.url("/")).await,
        get(&client, &api.url("/")).await,
        get(&client, &api.url("/")).await,
    ];
    for (a, remaining) in answers.iter().zip([1, 0, 0]) {
        let limit = params(header(a, "ratelimit"));
        assert_eq!(limit[0], ("r".to_owned(), remaining));
        assert_eq!(limit[1].0, "t");
        assert!((1..=60).contains(&limit[1].1));
        let policy = params(header(a, "ratelimit-policy"));
        assert_eq!(policy, [("q".to_owned(), 2), ("w".to_owned(), 60)]);
        assert!(!a.headers.contains_key("x-ratelimit-limit"));
    }
    assert_eq!(answers[2].status, 429);
    assert_eq!(api.count_429(), 1);
}

#[tokio::test]
async fn none_style_sends_only_retry_after() {
    let api = MockApi::builder()
        .quota(1, Duration::from_secs(60))
        .quota_headers(QuotaHeaders::None)
        .start()
        .await;
    let client = client();
    let ok = get(&client, &api.url("/")).await;
    let refused = get(&client, &api.url("/")).await;
    assert_eq!((ok.status.as_u16(), refused.status.as_u16()), (200, 429));
    for name in ["x-ratelimit-limit", "x-ratelimit-reset", "ratelimit"] {
        assert!(!ok.headers.contains_key(name));
        assert!(!refused.headers.contains_key(name));
    }
    assert!((1..=60).contains(&number(header(&refused, "retry-after"))));
}

#[tokio::test]
async fn waiting_retry_after_reaches_the_next_window() {
    let api = MockApi::builder()
        .quota(1, Duration::from_millis(500))
        .start()
        .await;
    let client = client();
    assert_eq!(get(&client, &api.url("/")).await.status, 200);
    let refused = get(&client, &api.url("/")).await;
    assert_eq!(refused.status, 429);
    let wait = number(header(&refused, "retry-after"));
    assert_eq!(wait, 1, "half a second window rounds up to one second");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = get(&client, &api.url("/")).await;
    assert_eq!(again.status, 200);
    assert_eq!(header(&again, "x-ratelimit-remaining"), "0");
    assert_eq!(api.count_429(), 1);
}
