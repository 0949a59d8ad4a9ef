//! The `metrics` feature: exact values for a scripted scenario, read from a debugging
//! recorder installed for the scenario's thread only.

use std::future::Future;
use std::num::NonZeroU32;

use calm::{Backoff, Client, Quota, RetryPolicy};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

use crate::support::{ms, scripted, stalled, BASE};

/// Runs `scenario` on a paused current-thread runtime with a recorder of its own.
fn recorded<F: Future<Output = ()>>(scenario: impl FnOnce() -> F) -> Snapshotter {
    let _serial = crate::support::serial();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(scenario()));
    snapshotter
}

/// The value of metric `name` with exactly `labels`.
fn value<'a>(metrics: &'a [Metric], name: &str, labels: &[(&str, &str)]) -> &'a DebugValue {
    let mut wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    wanted.sort();
    metrics
        .iter()
        .find(|(_, n, l, _)| n == name && *l == wanted)
        .map(|(_, _, _, v)| v)
        .unwrap_or_else(|| panic!("no {name} {wanted:?} in {metrics:#?}"))
}

/// A metric's kind, name, sorted labels and value.
type Metric = (MetricKind, String, Vec<(String, String)>, DebugValue);

fn flatten(snapshotter: &Snapshotter) -> Vec<Metric> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            (kind, key.name().to_string(), labels, value)
        })
        .collect()
}

fn seconds(values: &[f64]) -> DebugValue {
    DebugValue::Histogram(values.iter().map(|v| (*v).into()).collect())
}

#[test]
fn a_scripted_scenario_records_exact_values() {
    let snapshotter = recorded(|| async {
        let client = Client::builder(BASE)
            .rate_limit(Quota::per_second(NonZeroU32::new(10).unwrap()))
            .max_wait(ms(150))
            .retry(RetryPolicy::default().backoff(Backoff::constant(ms(250))))
            .build_with(scripted([
                (503, &[][..]),
                (200, &[][..]),
                (429, &[("retry-after", "1")][..]),
            ]))
            .unwrap();
        // 503, 250 ms backoff, 200: two attempts, one retry, 250 ms.
        client.get("/a").send().await.unwrap();
        // 100 ms for its place (10/s after /a's retry), then a 429 with Retry-After: 1, which
        // pauses the limiter for 1 s; the retry waits that second: 1.1 s.
        client.get("/b").send().await.unwrap();
        // The next place is 100 ms away, within max_wait: goes.
        client.get("/c").send().await.unwrap();
        // Then a place 100 ms away again, but asked at once twice: the second waits 200 ms,
        // past max_wait, and is refused.
        let (d, e) = tokio::join!(client.get("/d").send(), client.get("/e").send());
        assert!(d.is_ok());
        assert!(e.unwrap_err().is_rate_limited());
    });
    let metrics = flatten(&snapshotter);
    let host = ("server.address", "api.test");
    let get = ("http.request.method", "GET");

    assert_eq!(
        value(&metrics, "calm.http.client.attempts", &[get, host]),
        &DebugValue::Counter(6),
        "the refused place is no attempt"
    );
    assert_eq!(
        value(
            &metrics,
            "calm.http.client.retries",
            &[host, ("calm.retry.reason", "status 503")]
        ),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        value(
            &metrics,
            "calm.http.client.retries",
            &[host, ("calm.retry.reason", "status 429")]
        ),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        value(
            &metrics,
            "http.client.request.duration",
            &[get, host, ("http.response.status_class", "2xx")]
        ),
        &seconds(&[0.25, 1.1, 0.1, 0.1])
    );
    assert_eq!(
        value(
            &metrics,
            "http.client.request.duration",
            &[get, host, ("http.response.status_class", "error")]
        ),
        &seconds(&[0.0])
    );
    assert_eq!(
        value(&metrics, "http.client.active_requests", &[get, host]),
        &DebugValue::Gauge(0.0.into())
    );
    // The same `server.address` as the retry layer's, though the limiter was named with the
    // port (`api.test:8080`).
    let limiter_host = host;
    assert_eq!(
        value(&metrics, "calm.rate_limit.refusals", &[limiter_host]),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        value(
            &metrics,
            "calm.rate_limit.pauses",
            &[limiter_host, ("calm.rate_limit.header", "retry-after")]
        ),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        value(&metrics, "calm.rate_limit.queued", &[limiter_host]),
        &DebugValue::Gauge(0.0.into())
    );
    // Six places taken: /a and its retry (250 ms later) at once; /b 100 ms after that retry
    // (10/s); /b's retry at the end of the pause, which it waited out as a backoff, at once;
    // /c and /d 100 ms apart each.
    assert_eq!(
        value(&metrics, "calm.rate_limit.wait.duration", &[limiter_host]),
        &seconds(&[0.0, 0.0, 0.1, 0.0, 0.1, 0.1])
    );
}

#[test]
fn an_adaptive_limiter_reports_its_learned_rate() {
    let snapshotter = recorded(|| async {
        let client = Client::builder(BASE)
            .adaptive_rate(calm::ratelimit::Adaptive::starting_at(10.0))
            .retry(RetryPolicy::default().backoff(Backoff::constant(ms(100))))
            .build_with(scripted([(429, &[][..])]))
            .unwrap();
        // The 429 lowers the rate to 7/s; its retry's 200, 100 ms later, starts the climb back.
        client.get("/a").send().await.unwrap();
    });
    let metrics = flatten(&snapshotter);
    let &DebugValue::Gauge(rate) = value(
        &metrics,
        "calm.rate_limit.learned_rate",
        &[("server.address", "api.test")],
    ) else {
        panic!("a gauge");
    };
    assert!((7.0..10.0).contains(&rate.0), "{rate}");
}

#[test]
fn a_request_cut_by_its_timeout_is_recorded_as_cancelled() {
    let snapshotter = recorded(|| async {
        let client = Client::builder(BASE)
            .timeout(ms(300))
            .build_with(stalled())
            .unwrap();
        assert!(client.get("/a").send().await.unwrap_err().is_timeout());
    });
    let metrics = flatten(&snapshotter);
    let get = ("http.request.method", "GET");
    let host = ("server.address", "api.test");
    assert_eq!(
        value(
            &metrics,
            "http.client.request.duration",
            &[get, host, ("http.response.status_class", "cancelled")]
        ),
        &seconds(&[0.3])
    );
    assert_eq!(
        value(&metrics, "http.client.active_requests", &[get, host]),
        &DebugValue::Gauge(0.0.into())
    );
}
