//! Property tests of the retry decisions, on paused tokio time.
#![allow(missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use calm_retry::{
    Backoff, Jitter, RetryInfo, RetryLayer, RetryPolicy, RetryReason, StopReason, WaitSource,
};
use http::{Method, Request, Response, StatusCode};
use proptest::{option, prelude::*, sample::select};
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt};

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        (0.0..=1.0f64).prop_map(Jitter::Proportional),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    replies: Vec<(u16, Option<u64>)>,
    max_retries: u32,
    method: Method,
    idempotency_key: bool,
    non_idempotent: bool,
    backoff: Backoff,
    max_retry_after: Duration,
    deadline: Option<Duration>,
}

fn case() -> impl Strategy<Value = Case> {
    // mostly retryable statuses, so that schedules get long
    let reply = (
        prop_oneof![
            3 => select(vec![429u16, 502, 503, 504]),
            1 => select(vec![200u16, 201, 404, 500]),
        ],
        option::weighted(0.3, 0u64..120),
    );
    let backoff = (
        1u64..2_000,
        1.0f64..4.0,
        1u64..60_000,
        jitter(),
        any::<u64>(),
    )
        .prop_map(|(base, factor, cap, jitter, seed)| {
            Backoff::exponential(Duration::from_millis(base))
                .factor(factor)
                .max(Duration::from_millis(cap))
                .jitter(jitter)
                .seed(seed)
        });
    let urllib3 = (0.0f64..10.0).prop_map(Backoff::urllib3);
    (
        prop::collection::vec(reply, 1..10),
        0u32..7,
        select(vec![
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::POST,
            Method::PATCH,
        ]),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![backoff, urllib3],
        0u64..100,
        option::of(1u64..600),
    )
        .prop_map(
            |(replies, max_retries, method, idempotency_key, non_idempotent, backoff, mra, dl)| {
                Case {
                    replies,
                    max_retries,
                    method,
                    idempotency_key,
                    non_idempotent,
                    backoff,
                    max_retry_after: Duration::from_secs(mra),
                    deadline: dl.map(Duration::from_secs),
                }
            },
        )
}

/// Runs one request against a backend that answers `case.replies` in order (the last one
/// repeats), returning the response and how many calls the backend saw.
fn run(case: &Case) -> (Response<String>, usize, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let calls = Arc::new(Mutex::new(0usize));
        let backend = {
            let calls = calls.clone();
            let replies = case.replies.clone();
            tower::service_fn(move |_req: Request<String>| {
                let mut n = calls.lock().unwrap();
                let (code, hint) = replies[(*n).min(replies.len() - 1)];
                *n += 1;
                let mut res = Response::new(String::new());
                *res.status_mut() = StatusCode::from_u16(code).unwrap();
                if let Some(secs) = hint {
                    res.headers_mut()
                        .insert("retry-after", secs.to_string().parse().unwrap());
                }
                async move { Ok::<_, BoxError>(res) }
            })
        };
        let mut policy = RetryPolicy::default()
            .max_retries(case.max_retries)
            .backoff(case.backoff)
            .max_retry_after(case.max_retry_after)
            .retry_non_idempotent(case.non_idempotent)
            .no_budget();
        if let Some(deadline) = case.deadline {
            policy = policy.deadline(deadline);
        }
        let svc = RetryLayer::new(policy).unwrap().layer(backend);
        let mut req = Request::builder()
            .method(case.method.clone())
            .uri("/")
            .body(String::new())
            .unwrap();
        if case.idempotency_key {
            req.headers_mut()
                .insert("idempotency-key", "k".parse().unwrap());
        }
        let t0 = Instant::now();
        let res = svc.oneshot(req).await.unwrap();
        let elapsed = t0.elapsed();
        let n = *calls.lock().unwrap();
        (res, n, elapsed)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn retries_respect_the_policy(case in case()) {
        let (res, calls, elapsed) = run(&case);
        let info = res.extensions().get::<RetryInfo>().unwrap();
        let policy = RetryPolicy::default();

        // attempts are bounded and counted right
        prop_assert!(info.attempts() <= case.max_retries + 1);
        prop_assert_eq!(info.attempts() as usize, calls);
        prop_assert_eq!(info.retries().len() + 1, calls);

        let safe = case.non_idempotent
            || case.idempotency_key
            || !matches!(case.method, Method::POST | Method::PATCH);
        for (i, record) in info.retries().iter().enumerate() {
            let (code, hint) = case.replies[i.min(case.replies.len() - 1)];
            let status = StatusCode::from_u16(code).unwrap();
            // only retryable statuses are retried ...
            prop_assert_eq!(record.reason(), RetryReason::Status(status));
            prop_assert!(policy.retries_status(status));
            // ... and non-idempotent requests only when refused unprocessed
            if !safe {
                prop_assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            }
            // no single wait exceeds its cap
            match record.wait_source() {
                WaitSource::Backoff => {
                    prop_assert!(hint.is_none());
                    prop_assert!(record.wait() <= case.backoff.max_wait());
                }
                WaitSource::RetryAfter => {
                    prop_assert_eq!(Some(record.wait()), hint.map(Duration::from_secs));
                    prop_assert!(record.wait() <= case.max_retry_after);
                }
                _ => prop_assert!(false, "unknown wait source"),
            }
        }

        // the clock moved by exactly the waits (timers have 1 ms resolution)
        let waited = info.total_wait();
        prop_assert!(elapsed >= waited);
        prop_assert!(elapsed <= waited + Duration::from_millis(info.retries().len() as u64));
        if let Some(deadline) = case.deadline {
            prop_assert!(waited <= deadline);
        }

        // the stop reason matches the last response
        if !policy.retries_status(res.status()) {
            prop_assert_eq!(info.stop_reason(), &StopReason::Succeeded);
        } else {
            prop_assert_ne!(info.stop_reason(), &StopReason::Succeeded);
        }
        if info.stop_reason() == &StopReason::AttemptsExhausted {
            prop_assert_eq!(info.attempts(), case.max_retries + 1);
        }
    }
}
