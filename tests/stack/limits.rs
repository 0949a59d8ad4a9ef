//! Time and concurrency limits: per-attempt `timeout`, `deadline`, `max_in_flight`, `max_wait`.

use calm::error::TimedOut;
use calm::ratelimit::error::{MaxWaitExceeded, Unavailable};
use calm::retry::error::RetryError;
use calm::retry::{RetryReason, StopReason};
use calm::{Backoff, RetryPolicy};
use tokio::time::Instant;
use tower::timeout::error::Elapsed;

use crate::support::{builder, ms, per_minute, per_second, secs, Answer, Backend};

#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_times_out_and_a_get_is_retried() {
    let backend = Backend::new([Answer::stall(), Answer::ok()]);
    let client = builder()
        .attempt_timeout(secs(2))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let response = client.get("/slow").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let info = response.retry_info().unwrap();
    assert_eq!(info.attempts(), 2);
    assert_eq!(info.retries()[0].reason(), RetryReason::Error);
    assert_eq!(started.elapsed(), secs(2));

    let arrivals = backend.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert_eq!(arrivals[1].at - arrivals[0].at, secs(2));
    assert_eq!(client.stats().retries_by_reason, [(RetryReason::Error, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_counts_as_an_attempt() {
    let backend = Backend::new([Answer::stall(), Answer::ok()]);
    let client = builder()
        .attempt_timeout(secs(2))
        .build_with(backend.clone())
        .unwrap();
    client.get("/slow").send().await.unwrap();
    assert_eq!(backend.count(), 2);
    assert_eq!(client.stats().attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_post_times_out_and_is_not_retried() {
    let backend = Backend::new([Answer::stall(), Answer::ok()]);
    let client = builder()
        .attempt_timeout(secs(2))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let error = client.post("/orders").body("{}").send().await.unwrap_err();
    assert_eq!(started.elapsed(), secs(2));
    let error = error.find_source::<RetryError>().expect("a RetryError");
    assert!(error.find_source::<Elapsed>().is_some(), "{error}");
    assert_eq!(error.info().unwrap().attempts(), 1);
    assert_eq!(backend.count(), 1);
    assert_eq!(client.stats().errors, 1);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_does_not_count_the_wait_for_the_rate_limiter() {
    let backend = Backend::new([Answer::ok().delay(ms(100))]);
    let client = builder()
        .rate_limit(per_second(1))
        .attempt_timeout(ms(500))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    for _ in 0..2 {
        let response = client.get("/x").send().await.unwrap();
        assert_eq!(response.retry_info().unwrap().attempts(), 1);
    }
    // The second request waited 900 ms for its place, more than the 500 ms timeout.
    assert_eq!(started.elapsed(), ms(1100));
    assert_eq!(backend.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_retries_that_would_end_past_it() {
    let backend = Backend::new([Answer::status(503)]);
    let client = builder()
        .retry(
            RetryPolicy::default()
                .max_retries(10)
                .backoff(Backoff::constant(secs(2))),
        )
        .timeout(secs(5))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let response = client.get("/x").send().await.unwrap();
    // Attempts at 0 s, 2 s and 4 s; one at 6 s would end past the deadline.
    assert_eq!(response.status(), 503);
    let info = response.retry_info().unwrap();
    assert_eq!(info.attempts(), 3);
    assert!(
        matches!(info.stop_reason(), StopReason::DeadlineExceeded { .. }),
        "{:?}",
        info.stop_reason()
    );
    assert_eq!(started.elapsed(), secs(4));
    assert_eq!(backend.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_fails_a_request_still_running() {
    let backend = Backend::new([Answer::stall()]);
    let client = builder()
        .timeout(secs(3))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let error = client.get("/x").send().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.find_source::<TimedOut>().unwrap().after(), secs(3));
    assert_eq!(
        error.to_string(),
        "GET http://api.test/v1/x: timed out after 3 s"
    );
    assert_eq!(started.elapsed(), secs(3));
    assert_eq!(backend.count(), 1);
    assert_eq!(client.stats().errors, 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_counts_the_wait_for_the_first_place() {
    let backend = Backend::default();
    let client = builder()
        .rate_limit(per_minute(1))
        .timeout(secs(5))
        .build_with(backend.clone())
        .unwrap();
    client.get("/x").send().await.unwrap();

    // The next place is 60 s away: the request must fail when its 5 s are up.
    let started = Instant::now();
    let result = client.get("/x").send().await;
    let elapsed = started.elapsed();
    assert!(result.is_err(), "sent after {elapsed:?}");
    assert!(elapsed <= secs(5), "failed after {elapsed:?}");
    assert_eq!(backend.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_in_flight_keeps_one_request_at_the_backend() {
    async fn run(client: calm::Client) {
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { client.get(format!("/job/{i}")).send().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().status(), 200);
        }
    }

    let limited = Backend::new([Answer::ok().delay(secs(1))]);
    let client = builder()
        .max_in_flight(1)
        .build_with(limited.clone())
        .unwrap();
    let started = Instant::now();
    run(client).await;
    assert_eq!(limited.count(), 3);
    assert_eq!(limited.max_in_flight(), 1);
    assert_eq!(started.elapsed(), secs(3));

    let unlimited = Backend::new([Answer::ok().delay(secs(1))]);
    run(builder().build_with(unlimited.clone()).unwrap()).await;
    assert_eq!(unlimited.max_in_flight(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_max_wait_refusal_is_an_error_and_is_not_retried() {
    let backend = Backend::default();
    let client = builder()
        .rate_limit(per_second(1))
        .max_wait(ms(500))
        .build_with(backend.clone())
        .unwrap();
    client.get("/x").send().await.unwrap();

    let asked = Instant::now();
    let error = client.get("/x").send().await.unwrap_err();
    assert_eq!(asked.elapsed(), secs(0), "refused at once");
    let retry = error.find_source::<RetryError>().expect("a RetryError");
    let refusal = retry
        .find_source::<MaxWaitExceeded>()
        .expect("MaxWaitExceeded in the source chain");
    assert_eq!(refusal.wait(), secs(1));
    assert_eq!(refusal.max_wait(), ms(500));
    assert_eq!(refusal.available_at(), asked + secs(1));
    let info = retry.info().unwrap();
    assert!(info.retries().is_empty());
    assert_eq!(info.stop_reason(), &StopReason::NotRetryable);

    assert_eq!(backend.count(), 1);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.attempts, stats.errors), (2, 1, 1));
    assert_eq!(client.limiter_snapshot().unwrap().rejected, 1);

    // The refusal held no place: once the first place has passed, the next request goes.
    tokio::time::sleep(secs(1)).await;
    let asked = Instant::now();
    client.get("/x").send().await.unwrap();
    assert_eq!(asked.elapsed(), secs(0));
    assert_eq!(backend.count(), 2);
}

/// A retry whose place in the rate limiter lies past the deadline is not begun: the 503
/// comes back with its `RetryInfo`, not as `Elapsed`.
#[tokio::test(start_paused = true)]
async fn a_retry_whose_place_lies_past_the_deadline_returns_the_last_response() {
    let backend = Backend::new([Answer::status(503)]);
    let client = builder()
        .rate_limit(per_minute(1))
        .timeout(secs(5))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let response = client
        .get("/x")
        .send()
        .await
        .expect("the 503, not an error");
    assert_eq!(response.status(), 503);
    let info = response.retry_info().unwrap();
    assert_eq!(info.attempts(), 1);
    assert!(info.retries().is_empty(), "{:?}", info.retries());
    assert!(
        matches!(info.stop_reason(), StopReason::DeadlineExceeded { .. }),
        "{:?}",
        info.stop_reason()
    );
    assert!(started.elapsed() <= secs(5));
    assert_eq!(backend.count(), 1);
    // The retry's place was given back: the next request gets the place at 60 s.
    assert_eq!(client.limiter_snapshot().unwrap().queued, 0);
}

/// `rate_limit(2/s).max_in_flight(1)` with a slow first response: the requests that waited
/// for the in-flight slot still go out 500 ms apart, never at one instant.
#[tokio::test(start_paused = true)]
async fn waiting_for_an_in_flight_slot_spends_no_place() {
    let backend = Backend::new([Answer::ok().delay(secs(3)), Answer::ok()]);
    let client = builder()
        .rate_limit(per_second(2))
        .max_in_flight(1)
        .build_with(backend.clone())
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.get(format!("/job/{i}")).send().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), 200);
    }
    let arrivals: Vec<_> = backend.arrivals().iter().map(|a| a.at).collect();
    assert_eq!(arrivals.len(), 4);
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= ms(500),
            "two requests {:?} apart",
            pair[1] - pair[0]
        );
    }
}

/// A caller's own, earlier `Deadline` is kept when the client has a longer one.
#[tokio::test(start_paused = true)]
async fn a_callers_earlier_deadline_stays_in_force() {
    let backend = Backend::new([Answer::status(503)]);
    let client = builder()
        .retry(
            RetryPolicy::default()
                .max_retries(10)
                .backoff(Backoff::constant(secs(1))),
        )
        .timeout(secs(10))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let response = client
        .get("/x")
        .extension(calm::retry::Deadline::at(started + ms(2500)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    // Attempts at 0 s, 1 s and 2 s; one at 3 s would be past the caller's 2.5 s.
    assert_eq!(backend.count(), 3);
    assert!(matches!(
        response.retry_info().unwrap().stop_reason(),
        StopReason::DeadlineExceeded { .. }
    ));
}

/// A request whose deadline falls inside a server pause fails at once, naming the pause's end,
/// instead of hanging until the deadline.
#[tokio::test(start_paused = true)]
async fn a_deadline_inside_a_server_pause_fails_at_once_naming_its_end() {
    let backend = Backend::new([
        Answer::status(429).header("retry-after", "30"),
        Answer::ok(),
    ]);
    let client = builder()
        .rate_limit(per_second(10))
        .timeout(secs(5))
        .build_with(backend.clone())
        .unwrap();

    let started = Instant::now();
    let response = client.get("/x").send().await.unwrap();
    assert_eq!(response.status(), 429, "a 30 s Retry-After is not slept on");
    let snapshot = client.limiter_snapshot().unwrap();
    assert_eq!(snapshot.paused_until, Some(started + secs(30)));
    assert_eq!(client.stats().server_pauses, 1);

    let error = client.get("/x").send().await.unwrap_err();
    assert_eq!(started.elapsed(), secs(0), "failed at once");
    // NOTE: the bound was the request's timeout, not a `max_wait`: a timeout, at once.
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.rate_limited_until(), Some(started + secs(30)));
    let refused = error
        .find_source::<MaxWaitExceeded>()
        .expect("a MaxWaitExceeded in the chain");
    assert!(refused.is_paused());
    assert_eq!(refused.paused_until(), Some(started + secs(30)));
    assert_eq!(backend.count(), 1);
}

/// A limiter backend whose shared store is out of reach and that fails closed.
#[derive(Debug)]
struct FailsClosed;

impl calm::ratelimit::backend::Backend for FailsClosed {
    fn reserve(
        &self,
        _deadline: Option<Instant>,
        _waker: &std::task::Waker,
    ) -> Result<calm::ratelimit::backend::Ticket, Instant> {
        Ok(calm::ratelimit::backend::Ticket::deciding(1))
    }

    fn check(
        &self,
        _ticket: &calm::ratelimit::backend::Ticket,
        _waker: &std::task::Waker,
    ) -> calm::ratelimit::backend::Admission {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        calm::ratelimit::backend::Admission::Unavailable(Unavailable::new(refused))
    }

    fn release(&self, _ticket: &calm::ratelimit::backend::Ticket) {}

    fn pause_until(&self, _until: Instant) -> bool {
        false
    }

    fn state(&self) -> calm::ratelimit::backend::BackendState {
        calm::ratelimit::backend::BackendState::new(Instant::now())
    }
}

/// Failing closed means failing now: neither retried as an error nor as a connection that
/// was refused (the store's refused connection is in its source chain), even for a GET.
#[tokio::test(start_paused = true)]
async fn a_limiter_failing_closed_is_an_error_and_is_not_retried() {
    let backend = Backend::default();
    let client = builder()
        .limiter(calm::Limiter::with_backend(FailsClosed))
        .build_with(backend.clone())
        .unwrap();
    let asked = Instant::now();
    let error = client.get("/x").send().await.unwrap_err();
    assert_eq!(asked.elapsed(), secs(0), "refused at once");
    let retry = error.find_source::<RetryError>().expect("a RetryError");
    assert!(retry.find_source::<Unavailable>().is_some(), "{retry}");
    let info = retry.info().unwrap();
    assert!(info.retries().is_empty(), "{info:?}");
    assert_eq!(backend.count(), 0);
}
