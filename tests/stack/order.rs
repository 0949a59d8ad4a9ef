//! The order of the layers: SharedClient → Retry → RateLimit → transport.

use calm::client::error::ResolveErrorKind;
use calm::client::ResolveError;
use calm::retry::error::RetryError;
use calm::{Body, Client};
use http::{Request, Response};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::support::{builder, per_minute, per_second, response, secs, Backend, BASE};

type Mock = tower_test::mock::Mock<Request<Body>, Response<Body>>;
type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mock() -> (Mock, Handle) {
    tower_test::mock::pair::<Request<Body>, Response<Body>>()
}

#[tokio::test(start_paused = true)]
async fn every_attempt_first_tries_and_retries_waits_for_its_place() {
    let (transport, mut handle) = mock();
    let client = builder()
        .rate_limit(per_second(1))
        .default_header("x-api-key", "k-123")
        .build_with(transport)
        .unwrap();

    let caller = tokio::spawn({
        let client = client.clone();
        async move {
            let first = client.get("/items?page=2").send().await.unwrap();
            let second = client.get("items?page=3").send().await.unwrap();
            (first, second)
        }
    });

    // The first request meets 503, 503, 200; the second 200 at once.
    let mut arrivals = Vec::new();
    for status in [503, 503, 200, 200] {
        let (request, send) = handle.next_request().await.expect("an attempt");
        arrivals.push((Instant::now(), request));
        send.send_response(response(status));
    }
    let (first, second) = caller.await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.retry_info().unwrap().attempts(), 3);
    assert_eq!(second.status(), 200);
    assert_eq!(second.retry_info().unwrap().attempts(), 1);

    // Retries wait at once (no backoff): only the limiter can space the attempts.
    for pair in arrivals.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= secs(1),
            "an attempt came {gap:?} after the previous one"
        );
    }
    assert_eq!(arrivals[3].0 - arrivals[0].0, secs(3));

    for (i, (_, request)) in arrivals.iter().enumerate() {
        let page = if i < 3 { 2 } else { 3 };
        assert_eq!(
            request.uri().to_string(),
            format!("http://api.test/v1/items?page={page}"),
            "attempt {i}"
        );
        assert_eq!(request.headers()["x-api-key"], "k-123", "attempt {i}");
        assert_eq!(
            request.headers()["user-agent"],
            calm::client::DEFAULT_USER_AGENT,
            "attempt {i}"
        );
    }
    assert_eq!(client.limiter_snapshot().unwrap().waits, 3);
}

#[tokio::test(start_paused = true)]
async fn a_request_leaving_the_base_url_is_refused_by_the_outermost_layer() {
    let backend = Backend::default();
    let client = builder().build_with(backend.clone()).unwrap();

    for uri in ["https://evil.example/v1/x", "http://api.test/v2/x"] {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let error = client.clone().oneshot(request).await.unwrap_err();
        // Refused above Retry: not wrapped in a RetryError, so never retried.
        assert!(error.downcast_ref::<RetryError>().is_none(), "{error}");
        let resolve = error
            .downcast_ref::<ResolveError>()
            .unwrap_or_else(|| panic!("{uri}: not a ResolveError: {error}"));
        assert!(matches!(
            resolve.kind(),
            ResolveErrorKind::ForeignOrigin | ResolveErrorKind::OutsideBasePath
        ));
    }
    assert_eq!(backend.count(), 0);
    assert_eq!(client.stats().attempts, 0);
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_takes_no_place_in_the_rate_limiter() {
    let backend = Backend::default();
    let client = builder()
        .rate_limit(per_minute(1))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    for _ in 0..2 {
        let request = Request::get("https://evil.example/v1/x")
            .body(Body::empty())
            .unwrap();
        let error = client.clone().oneshot(request).await.unwrap_err();
        assert!(error.downcast_ref::<ResolveError>().is_some(), "{error}");
    }
    assert_eq!(
        started.elapsed(),
        secs(0),
        "a refused request waited for a place"
    );
    let snapshot = client.limiter_snapshot().unwrap();
    assert!(snapshot.next_free <= snapshot.taken_at, "{snapshot:?}");

    // The one place of the minute is still there for a request that is sent.
    client.get("/x").send().await.unwrap();
    assert_eq!(started.elapsed(), secs(0));
    assert_eq!(backend.arrivals()[0].uri, "http://api.test/v1/x");
}

#[tokio::test(start_paused = true)]
async fn a_header_set_on_the_request_replaces_the_default() {
    let backend = Backend::default();
    let client = Client::builder(BASE)
        .user_agent("default-agent")
        .default_header("x-tenant", "a")
        .build_with(backend.clone())
        .unwrap();

    client
        .get("/x")
        .header("user-agent", "own-agent")
        .send()
        .await
        .unwrap();
    client.get("/y").send().await.unwrap();

    let arrivals = backend.arrivals();
    let agents = |i: usize| -> Vec<_> {
        arrivals[i]
            .headers
            .get_all("user-agent")
            .iter()
            .cloned()
            .collect()
    };
    assert_eq!(agents(0), ["own-agent"]);
    assert_eq!(agents(1), ["default-agent"]);
    assert_eq!(arrivals[0].headers["x-tenant"], "a");
}
