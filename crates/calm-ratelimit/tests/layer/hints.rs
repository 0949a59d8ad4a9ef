use std::time::{Duration, SystemTime, UNIX_EPOCH};

use calm_ratelimit::error::MaxWaitExceeded;
use calm_ratelimit::{Quota, RateLimitLayer, WallClock};
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_test::mock;

use crate::support::{self, ms, n, req, secs, serve, Arrivals};

fn wall_start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Answers the request named "probe" with `status` and `headers`, everything else with 200.
fn probe_answer(
    status: StatusCode,
    headers: Vec<(&'static str, HeaderValue)>,
) -> impl Fn(&Request<String>) -> Response<()> + Send + 'static {
    move |request| {
        let mut response = Response::new(());
        if request.body() == "probe" {
            *response.status_mut() = status;
            for (name, value) in &headers {
                response.headers_mut().append(*name, value.clone());
            }
        }
        response
    }
}

/// One task sends "probe" at 0 s; two other tasks asked for places behind it at 0 s.
/// Returns the arrivals and the limiter's snapshot at the end.
async fn scenario(
    layer: RateLimitLayer,
    status: StatusCode,
    headers: Vec<(&'static str, HeaderValue)>,
) -> (Arrivals, calm_ratelimit::Snapshot) {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, probe_answer(status, headers));
    let svc = layer.layer(inner);
    let probe = tokio::spawn(svc.clone().oneshot(req("probe")));
    let others: Vec<_> = ["b", "c"]
        .into_iter()
        .map(|name| tokio::spawn(svc.clone().oneshot(req(name))))
        .collect();
    let response = probe.await.unwrap().unwrap();
    assert_eq!(response.status(), status);
    for other in others {
        other.await.unwrap().unwrap();
    }
    (arrivals, svc.limiter().snapshot())
}

fn layer() -> RateLimitLayer {
    RateLimitLayer::new(Quota::per_second(n(10)))
        .server_hints(true)
        .wall_clock(WallClock::starting_at(wall_start()))
}

fn value(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_429_pauses_every_other_task() {
    let (arrivals, snap) = scenario(
        layer(),
        StatusCode::TOO_MANY_REQUESTS,
        vec![("retry-after", value("30"))],
    )
    .await;
    assert_eq!(arrivals.names(), ["probe", "b", "c"]);
    assert_eq!(arrivals.times(), [secs(0), secs(30), ms(30_100)]);
    assert_eq!((snap.throttled, snap.pauses), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn x_ratelimit_remaining_zero_with_epoch_reset_pauses() {
    let (arrivals, snap) = scenario(
        layer(),
        StatusCode::OK,
        vec![
            ("x-ratelimit-limit", value("5000")),
            ("x-ratelimit-remaining", value("0")),
            ("x-ratelimit-reset", value("1700000030")),
        ],
    )
    .await;
    assert_eq!(arrivals.times(), [secs(0), secs(30), ms(30_100)]);
    assert_eq!(snap.server_limit, Some(5000));
    assert_eq!(snap.server_remaining, Some(0));
    assert_eq!(snap.server_reset, Some(snap.taken_at - ms(100)));
    assert_eq!(snap.throttled, 0);
}

#[tokio::test(start_paused = true)]
async fn github_403_with_nothing_remaining_is_a_throttle() {
    let (arrivals, snap) = scenario(
        layer(),
        StatusCode::FORBIDDEN,
        vec![
            ("x-ratelimit-remaining", value("0")),
            ("x-ratelimit-reset", value("1700000020")),
        ],
    )
    .await;
    assert_eq!(arrivals.times(), [secs(0), secs(20), ms(20_100)]);
    assert_eq!(snap.throttled, 1);
}

#[tokio::test(start_paused = true)]
async fn ietf_ratelimit_field_pauses() {
    let (arrivals, snap) = scenario(
        layer(),
        StatusCode::OK,
        vec![
            ("ratelimit", value(r#""default";r=0;t=12"#)),
            ("ratelimit-policy", value(r#""default";q=100;w=60"#)),
        ],
    )
    .await;
    assert_eq!(arrivals.times(), [secs(0), secs(12), ms(12_100)]);
    assert_eq!(snap.server_limit, Some(100));
}

#[tokio::test(start_paused = true)]
async fn duration_string_reset_pauses() {
    let (arrivals, _) = scenario(
        layer(),
        StatusCode::OK,
        vec![
            ("x-ratelimit-remaining-requests", value("0")),
            ("x-ratelimit-reset-requests", value("1.5s")),
        ],
    )
    .await;
    assert_eq!(arrivals.times(), [secs(0), ms(1500), ms(1600)]);
}

#[tokio::test(start_paused = true)]
async fn remaining_quota_does_not_pause() {
    let (arrivals, snap) = scenario(
        layer(),
        StatusCode::OK,
        vec![
            ("x-ratelimit-remaining", value("7")),
            ("x-ratelimit-reset", value("30")),
        ],
    )
    .await;
    assert_eq!(arrivals.times(), [ms(0), ms(100), ms(200)]);
    assert_eq!(snap.server_remaining, Some(7));
    assert_eq!(snap.pauses, 0);
}

#[tokio::test(start_paused = true)]
async fn malformed_hints_change_nothing() {
    let bad: [&[u8]; 7] = [
        b"soon",
        b"-5",
        b"99999999999999999999999999",
        b"99999999999",
        b"\xff\xfe",
        b"3\xc3\xa9",
        b"",
    ];
    for bytes in bad {
        let value = HeaderValue::from_bytes(bytes).unwrap();
        let (arrivals, snap) = scenario(
            layer(),
            StatusCode::TOO_MANY_REQUESTS,
            vec![
                ("retry-after", value.clone()),
                ("x-ratelimit-remaining", value.clone()),
                ("x-ratelimit-reset", value.clone()),
                ("ratelimit", value),
            ],
        )
        .await;
        assert_eq!(arrivals.times(), [ms(0), ms(100), ms(200)], "{bytes:?}");
        assert_eq!((snap.pauses, snap.paused_until), (0, None), "{bytes:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_is_capped_at_max_pause() {
    let (arrivals, _) = scenario(
        layer().max_pause(secs(60)),
        StatusCode::TOO_MANY_REQUESTS,
        vec![("retry-after", value("3600"))],
    )
    .await;
    assert_eq!(arrivals.times(), [secs(0), secs(60), ms(60_100)]);
}

#[tokio::test(start_paused = true)]
async fn the_default_cap_is_one_minute() {
    let (arrivals, snap) = scenario(
        layer(),
        StatusCode::TOO_MANY_REQUESTS,
        vec![("retry-after", value("86400"))],
    )
    .await;
    assert_eq!(calm_ratelimit::DEFAULT_MAX_PAUSE, secs(60));
    assert_eq!(arrivals.times(), [secs(0), secs(60), ms(60_100)]);
    assert_eq!(snap.pauses, 1);
}

#[tokio::test(start_paused = true)]
async fn hints_can_be_turned_off() {
    let (arrivals, snap) = scenario(
        layer().server_hints(false),
        StatusCode::TOO_MANY_REQUESTS,
        vec![("retry-after", value("30"))],
    )
    .await;
    assert_eq!(arrivals.times(), [ms(0), ms(100), ms(200)]);
    assert_eq!(snap.throttled, 0);
}

#[tokio::test(start_paused = true)]
async fn an_http_date_is_read_against_the_wall_clock() {
    // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
    let (arrivals, _) = scenario(
        layer(),
        StatusCode::SERVICE_UNAVAILABLE,
        vec![("retry-after", value("Tue, 14 Nov 2023 22:13:45 GMT"))],
    )
    .await;
    assert_eq!(arrivals.times(), [secs(0), secs(25), ms(25_100)]);
}

#[tokio::test(start_paused = true)]
async fn a_pause_past_max_wait_fails_the_waiters_it_delays_too_much() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(
        handle,
        probe_answer(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", value("30"))],
        ),
    );
    let svc = layer().max_wait(secs(5)).layer(inner);
    let start = Instant::now();
    let probe = tokio::spawn(svc.clone().oneshot(req("probe")));
    let waiter = tokio::spawn(svc.clone().oneshot(req("b")));
    probe.await.unwrap().unwrap();
    let err = waiter.await.unwrap().unwrap_err();
    let err = err.downcast_ref::<MaxWaitExceeded>().unwrap();
    assert_eq!(err.available_at(), start + secs(30));
    assert_eq!(
        start.elapsed(),
        secs(0),
        "failed as soon as the pause arrived"
    );
    assert_eq!(arrivals.names(), ["probe"]);
    // New callers are refused at once too, until the pause ends.
    let err = svc.clone().oneshot(req("c")).await.unwrap_err();
    assert!(err.is::<MaxWaitExceeded>());
    support::settle().await;
    assert_eq!(svc.limiter().snapshot().queued, 0);
}

#[tokio::test(start_paused = true)]
async fn a_pause_keeps_waiters_in_order_behind_it() {
    let (inner, handle) = mock::pair();
    let arrivals = serve(handle, support::ok);
    let svc = layer().layer(inner);
    let tasks: Vec<_> = (0..5)
        .map(|i| tokio::spawn(svc.clone().oneshot(req(i.to_string()))))
        .collect();
    tokio::time::sleep(ms(150)).await;
    // 0 went at 0 ms and 1 at 100 ms; 2, 3, 4 were due at 200, 300, 400 ms.
    svc.limiter().pause_until(Instant::now() + ms(850));
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(arrivals.names(), ["0", "1", "2", "3", "4"]);
    assert_eq!(
        arrivals.times(),
        [ms(0), ms(100), ms(1000), ms(1100), ms(1200)]
    );
}

/// A handler of your own answering 503 + `Retry-After: 5`.
fn own_handler() -> impl tower::Service<
    Request<String>,
    Response = Response<()>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<Response<()>, std::convert::Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<String>| {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("5"));
        std::future::ready(Ok(response))
    })
}

#[tokio::test(start_paused = true)]
async fn a_bare_layer_does_not_pause_itself_on_its_own_handlers_answers() {
    let layer = RateLimitLayer::new(Quota::per_second(n(100)));
    let svc = layer.layer(own_handler());
    let start = Instant::now();
    for _ in 0..3 {
        let response = svc.clone().oneshot(req("x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(start.elapsed(), ms(20));
    let snap = layer.limiter().snapshot();
    assert_eq!(
        (snap.paused_until, snap.pauses, snap.throttled),
        (None, 0, 0)
    );

    // Opting in: the same answer pauses every caller for 5 s.
    let layer = RateLimitLayer::new(Quota::per_second(n(100))).server_hints(true);
    let svc = layer.layer(own_handler());
    let start = Instant::now();
    svc.clone().oneshot(req("x")).await.unwrap();
    svc.clone().oneshot(req("y")).await.unwrap();
    assert_eq!(start.elapsed(), secs(5));
    // "y" got the same answer at 5 s: the pause moved again, and counts again.
    assert_eq!(layer.limiter().snapshot().pauses, 2);
}

#[tokio::test(start_paused = true)]
async fn a_pause_counts_and_logs_once_with_host_and_header() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let layer = RateLimitLayer::new(Quota::per_second(n(100)).burst(n(3))).server_hints(true);
    // Answers after 10 ms, so the three answers arrive together.
    let slow = tower::service_fn(|req: Request<String>| async move {
        tokio::time::sleep(ms(10)).await;
        own_handler().oneshot(req).await
    });
    let svc = layer.layer(slow);
    // Three callers see the same 503 at the same instant: one pause, counted once.
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let request = Request::get("https://user:secret@api.example.com:8443/v1/x?token=abc")
                .body(String::new())
                .unwrap();
            tokio::spawn(svc.clone().oneshot(request))
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let snap = layer.limiter().snapshot();
    assert_eq!((snap.pauses, snap.throttled), (1, 3));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(text.contains("host=api.example.com:8443"), "{text}");
    assert!(text.contains("header=\"retry-after\""), "{text}");
    assert!(text.contains("5s"), "{text}");
    for secret in ["user", "secret", "token", "abc", "/v1"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // A configured host is named instead.
    logs.0.lock().unwrap().clear();
    let layer = RateLimitLayer::new(Quota::per_second(n(100)))
        .server_hints(true)
        .host("api.example.com");
    layer.layer(own_handler()).oneshot(req("x")).await.unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("host=api.example.com "), "{text}");
}
