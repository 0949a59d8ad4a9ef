//! The span tree and the events of scripted scenarios, and what no field ever shows.

use calm::retry::Retry;
use calm::{Backoff, Client, RetryPolicy};
use http::Request;
use tower::ServiceExt;
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;

use crate::capture::Captured;
use crate::support::{ms, per_second, scripted, stalled, BASE, QUERY_SECRET, TOKEN};

/// Nothing secret in any span name, field, event message or event field.
fn assert_nothing_secret(captured: &Captured) {
    let text = captured.all_text();
    assert!(!text.is_empty());
    for secret in [TOKEN, QUERY_SECRET, "Bearer"] {
        assert!(!text.contains(secret), "{secret} shows in:\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retried_request_is_one_request_span_over_one_client_span_per_attempt() {
    let (captured, _guard) = Captured::install(LevelFilter::DEBUG);
    let client = Client::builder(BASE)
        .bearer_auth(TOKEN)
        .retry(RetryPolicy::default().backoff(Backoff::constant(ms(100))))
        .build_with(scripted([(503, &[][..]), (200, &[][..])]))
        .unwrap();

    let path = format!("/items?api_key={QUERY_SECRET}");
    let response = client.get(path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);

    let requests = captured.spans_named("calm.request");
    assert_eq!(requests.len(), 1, "{:#?}", captured.spans());
    let request = &requests[0];
    assert_eq!(request.level, Level::INFO);
    assert_eq!(request.parent, None);
    assert!(request.closed);
    for (field, value) in [
        ("otel.kind", "internal"),
        ("http.request.method", "GET"),
        ("server.address", "api.test"),
        ("server.port", "8080"),
        ("url.full", "http://api.test:8080/v1/items?***"),
        ("http.response.status_code", "200"),
        ("calm.attempts", "2"),
    ] {
        assert_eq!(request.field(field), Some(value), "{field}: {request:#?}");
    }
    assert_eq!(request.field("error.type"), None);
    assert_eq!(request.field("calm.retry.stop"), None);

    let attempts = captured.children(request.id);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for attempt in &attempts {
        assert_eq!((attempt.name, attempt.level), ("GET", Level::DEBUG));
        assert_eq!(attempt.field("otel.kind"), Some("client"));
        assert_eq!(attempt.field("otel.name"), Some("GET"));
        assert_eq!(attempt.field("http.request.method"), Some("GET"));
        assert_eq!(attempt.field("server.address"), Some("api.test"));
        assert_eq!(
            attempt.field("url.full"),
            Some("http://api.test:8080/v1/items?***")
        );
        assert!(attempt.closed);
    }
    let (first, retry) = (&attempts[0], &attempts[1]);
    assert_eq!(first.field("http.request.resend_count"), None);
    assert_eq!(first.field("http.response.status_code"), Some("503"));
    assert_eq!(first.field("error.type"), Some("503"));
    assert_eq!(first.field("otel.status_code"), Some("ERROR"));
    assert_eq!(first.field("calm.retry.reason"), None);

    assert_eq!(retry.field("http.request.resend_count"), Some("1"));
    assert_eq!(retry.field("http.response.status_code"), Some("200"));
    assert_eq!(retry.field("error.type"), None);
    assert_eq!(retry.field("calm.retry.reason"), Some("status 503"));
    assert_eq!(retry.field("calm.retry.wait"), Some("0.1"));
    assert_eq!(retry.field("calm.retry.wait_source"), Some("backoff"));

    let events = captured.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let scheduled = &events[0];
    assert_eq!(scheduled.level, Level::DEBUG);
    assert_eq!(scheduled.message, "retry scheduled");
    assert_eq!(scheduled.span, Some(request.id));
    assert_eq!(scheduled.field("calm.retry.reason"), Some("status 503"));
    assert_eq!(scheduled.field("calm.retry.wait_source"), Some("backoff"));
    assert_nothing_secret(&captured);
}

#[tokio::test(start_paused = true)]
async fn at_info_only_the_request_span_is_built_and_routine_events_stay_quiet() {
    let (captured, _guard) = Captured::install(LevelFilter::INFO);
    let client = Client::builder(BASE)
        .retry(RetryPolicy::default().backoff(Backoff::constant(ms(100))))
        .build_with(scripted([(503, &[][..]), (502, &[][..])]))
        .unwrap();

    let response = client.get("/items").send().await.unwrap();
    assert_eq!(response.status(), 200);

    let spans = captured.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].name, "calm.request");
    assert_eq!(spans[0].field("calm.attempts"), Some("3"));
    assert!(captured.events().is_empty(), "{:#?}", captured.events());
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_pauses_others_and_says_so_at_warn() {
    let (captured, _guard) = Captured::install(LevelFilter::DEBUG);
    let client = Client::builder(BASE)
        .bearer_auth(TOKEN)
        .rate_limit(per_second(100))
        .build_with(scripted([(429, &[("retry-after", "2")][..])]))
        .unwrap();

    let first = tokio::spawn(client.get("/first").send());
    tokio::time::sleep(ms(100)).await;
    // Asks 100 ms into the server's 2 s pause: waits 1.9 s for the rate limiter.
    let second = client.get("/second").send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(first.await.unwrap().unwrap().status(), 200);

    let events = captured.events();
    let warnings: Vec<_> = events.iter().filter(|e| e.level == Level::WARN).collect();
    assert_eq!(warnings.len(), 1, "{events:#?}");
    let pause = warnings[0];
    assert!(pause.message.contains("pausing every caller"), "{pause:#?}");
    assert_eq!(pause.field("host"), Some("api.test:8080"));
    assert_eq!(pause.field("header"), Some("retry-after"));
    assert_eq!(pause.field("pause"), Some("2s"));

    let requests = captured.spans_named("calm.request");
    assert_eq!(requests.len(), 2);
    let first_attempts = captured.children(requests[0].id);
    assert_eq!(first_attempts.len(), 2);
    assert_eq!(
        first_attempts[0].field("http.response.status_code"),
        Some("429")
    );
    assert_eq!(first_attempts[0].field("error.type"), Some("429"));
    assert_eq!(
        first_attempts[1].field("http.request.resend_count"),
        Some("1")
    );
    assert_eq!(
        first_attempts[1].field("calm.retry.wait_source"),
        Some("retry-after")
    );
    assert_eq!(first_attempts[1].field("calm.retry.wait"), Some("2.0"));
    assert_eq!(
        first_attempts[1].field("calm.retry.reason"),
        Some("status 429")
    );

    let second_attempts = captured.children(requests[1].id);
    assert_eq!(second_attempts.len(), 1);
    let waited = &second_attempts[0];
    assert_eq!(waited.field("calm.rate_limit.wait"), Some("1.9"));
    let wait_event = events
        .iter()
        .find(|e| e.span == Some(waited.id))
        .expect("the wait is logged in the attempt span");
    assert_eq!(wait_event.level, Level::DEBUG);
    assert_eq!(wait_event.message, "waited for the rate limiter");
    assert_nothing_secret(&captured);
}

#[tokio::test(start_paused = true)]
async fn a_max_wait_refusal_is_an_info_event_and_a_rate_limited_error_type() {
    let (captured, _guard) = Captured::install(LevelFilter::DEBUG);
    let client = Client::builder(BASE)
        .rate_limit(per_second(1))
        .max_wait(ms(100))
        .build_with(scripted([]))
        .unwrap();

    client.get("/a").send().await.unwrap();
    let refused = client.get("/b").send().await.unwrap_err();
    assert!(refused.is_rate_limited());

    let refusals: Vec<_> = captured
        .events()
        .into_iter()
        .filter(|e| e.level == Level::INFO)
        .collect();
    assert_eq!(refusals.len(), 1, "{:#?}", captured.events());
    let refusal = &refusals[0];
    assert!(refusal.message.contains("max_wait"), "{refusal:#?}");
    assert_eq!(refusal.field("host"), Some("api.test:8080"));
    assert_eq!(refusal.field("calm.rate_limit.wait"), Some("1.0"));
    assert_eq!(refusal.field("max_wait"), Some("100ms"));

    let requests = captured.spans_named("calm.request");
    let refused_request = &requests[1];
    assert_eq!(refused_request.field("error.type"), Some("rate_limited"));
    assert_eq!(refused_request.field("otel.status_code"), Some("ERROR"));
    assert_eq!(refused_request.field("calm.attempts"), Some("1"));
    assert_eq!(refused_request.field("http.response.status_code"), None);
    let attempts = captured.children(refused_request.id);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].field("error.type"), Some("rate_limited"));
    // The refusal happened inside the attempt it refused.
    assert_eq!(refusal.span, Some(attempts[0].id));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_above_the_cap_is_an_info_event_and_the_request_span_says_why() {
    let (captured, _guard) = Captured::install(LevelFilter::INFO);
    let client = Client::builder(BASE)
        .build_with(scripted([(503, &[("retry-after", "3600")][..])]))
        .unwrap();

    let response = client.get("/a").send().await.unwrap();
    assert_eq!(response.status(), 503);

    let events = captured.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].level, Level::INFO);
    assert!(events[0].message.contains("Retry-After is above the cap"));
    let request = &captured.spans_named("calm.request")[0];
    assert_eq!(
        request.field("calm.retry.stop"),
        Some("Retry-After above the cap")
    );
    assert_eq!(request.field("error.type"), Some("503"));
}

#[tokio::test(start_paused = true)]
async fn the_query_shows_only_when_asked_for() {
    let (captured, _guard) = Captured::install(LevelFilter::DEBUG);
    let client = Client::builder(BASE)
        .trace_url_query(true)
        .build_with(scripted([]))
        .unwrap();

    client.get("/items?page=2").send().await.unwrap();

    let request = &captured.spans_named("calm.request")[0];
    assert_eq!(
        request.field("url.full"),
        Some("http://api.test:8080/v1/items?page=2")
    );
    let attempt = &captured.children(request.id)[0];
    assert_eq!(
        attempt.field("url.full"),
        Some("http://api.test:8080/v1/items?page=2")
    );
}

#[tokio::test(start_paused = true)]
async fn the_retry_layer_alone_never_shows_userinfo_or_the_query() {
    let (captured, _guard) = Captured::install(LevelFilter::DEBUG);
    let svc = Retry::new(scripted([(503, &[][..])]), RetryPolicy::default()).unwrap();
    let uri = format!("https://user:{TOKEN}@api.test/x?key={QUERY_SECRET}");
    let request = Request::post(uri)
        .header("idempotency-key", "k1")
        .body(calm::Body::empty())
        .unwrap();

    let response = svc.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);

    let request = &captured.spans_named("calm.request")[0];
    assert_eq!(request.field("url.full"), Some("https://api.test/x?***"));
    assert_eq!(request.field("server.port"), Some("443"));
    let attempts = captured.children(request.id);
    assert_eq!(
        attempts.iter().map(|a| a.name).collect::<Vec<_>>(),
        ["POST", "POST"]
    );
    assert_nothing_secret(&captured);
    assert!(!captured.all_text().contains("user"));
}

#[tokio::test(start_paused = true)]
async fn a_retry_past_the_deadline_is_an_info_event_and_a_malformed_retry_after_a_debug_one() {
    let (captured, _guard) = Captured::install(LevelFilter::DEBUG);
    let client = Client::builder(BASE)
        .retry(RetryPolicy::default().backoff(Backoff::constant(ms(400))))
        .timeout(ms(300))
        .build_with(scripted([(503, &[("retry-after", "soon")][..])]))
        .unwrap();

    // The 503's Retry-After is not understood, so the backoff of 400 ms applies; it would end
    // past the 300 ms timeout, so the 503 comes back at once.
    let response = client.get("/a").send().await.unwrap();
    assert_eq!(response.status(), 503);

    let events = captured.events();
    let malformed = events
        .iter()
        .find(|e| e.message == "ignoring malformed Retry-After")
        .expect("the malformed hint is logged");
    assert_eq!(malformed.level, Level::DEBUG);
    assert_eq!(malformed.field("value"), Some("\"soon\""));
    let cut = events
        .iter()
        .find(|e| e.level == Level::INFO)
        .expect("the early return is logged");
    assert!(cut.message.contains("deadline"), "{cut:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_cut_by_its_timeout_is_an_info_event() {
    let (captured, _guard) = Captured::install(LevelFilter::INFO);
    let client = Client::builder(BASE)
        .timeout(ms(300))
        .build_with(stalled())
        .unwrap();

    let cut = client.get("/a").send().await.unwrap_err();
    assert!(cut.is_timeout(), "{cut:?}");

    let events = captured.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].level, Level::INFO);
    assert_eq!(events[0].message, "request cut by its timeout");
    assert_eq!(events[0].field("timeout"), Some("300ms"));
    assert_eq!(events[0].field("calm.attempts"), Some("1"));
    // The request it cut closes as cancelled.
    let request = &captured.spans_named("calm.request")[0];
    assert!(request.closed);
    assert_eq!(request.field("error.type"), Some("cancelled"));
    assert_eq!(request.field("http.response.status_code"), None);
}
