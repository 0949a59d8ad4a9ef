//! Acceptance tests of `calm::redis` with real processes: several OS processes, each running a
//! `calm::Client` over the same Redis limiter, call one calm-mock server, and the server's
//! arrival instants show whether they kept to one quota between them.
//!
//! Each test starts a `redis-server` (the crate's test support; it panics when Redis is
//! missing, so nothing is skipped), a calm-mock server on this process's runtime, and worker
//! processes: this test binary again, running only the [`worker`] test with its job in the
//! environment (see the `worker` module). The workers start together and run on real time.
//!
//! # Tolerance
//!
//! With burst 1 the limiter's places are at least one interval `T` apart, so a half-open
//! window of one period holds at most the quota's count of places. A request reaches the server
//! a little after its place (its task wakes up, the request crosses loopback), and that delay
//! varies: a window can catch one extra request whose place lay just before it. Windows are
//! allowed the count plus one; a second extra one needs a delay spread of a whole interval.

#[path = "../../crates/calm-ratelimit-redis/tests/support/mod.rs"]
mod support;

mod arrivals;
mod worker;

use std::time::Duration;

use calm_mock::{MockApi, Reply};
use support::RedisServer;

use crate::arrivals::Arrivals;
use crate::worker::Job;

const SECOND: Duration = Duration::from_secs(1);

/// One acceptance test at a time: each runs its workers on real time, and two at once on a
/// two-core machine would measure the machine's load rather than the limiter.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Not a test: the body of a worker process, started by the tests below. Run as part of the
/// suite (no job in the environment), it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker() {
    let Some((id, job)) = Job::from_env() else {
        return;
    };
    println!("{}", job.run(id).await.line());
}

/// 4 processes × 2 tasks, one Redis limiter of 20/s, against a server that allows 20 per
/// fixed second and says so in its headers: the server never refuses, no second holds more
/// than 20 (+1), and together the processes use at least 90 % of the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_one_quota() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let redis = RedisServer::start();
    let api = MockApi::builder().quota(20, SECOND).start().await;
    let job = Job {
        redis_url: redis.url(),
        name: "acceptance:one-quota".to_owned(),
        base_url: api.base_url(),
        quotas: vec![(20, SECOND)],
        run_for: Duration::from_secs(5),
        tasks: 2,
    };

    let summaries = job.spawn(4).finish().await;

    let arrivals = Arrivals::of(&api);
    let (from, to) = arrivals.overlap();
    let rate = arrivals.rate(from, to);
    let densest = arrivals.densest(SECOND);
    let max_1s = densest.len();
    println!(
        "one quota: {} requests, max {max_1s} in 1 s, {rate:.2}/s over {:?} together; {summaries:?}",
        arrivals.len(),
        to - from,
    );
    assert_eq!(api.count_429(), 0, "the server refused requests");
    for s in &summaries {
        assert_eq!((s.too_many, s.failed), (0, 0), "worker {}: {s:?}", s.id);
        assert!(s.ok > 0, "worker {} sent nothing", s.id);
    }
    let ok: usize = summaries.iter().map(|s| s.ok).sum();
    assert_eq!(ok, arrivals.len(), "every request arrived and got its 200");
    assert!(
        max_1s <= 20 + 1,
        "{max_1s} requests in one second, {}",
        arrivals.describe(densest)
    );
    assert!(rate >= 0.9 * 20.0, "{rate:.2}/s is under 90 % of the quota");
}

/// 3 processes × 2 tasks at 10/s; the server answers its 10th request `429 Retry-After: 2`.
/// The worker that gets it pauses every process through Redis: nothing arrives for 2 s but
/// requests already on their way, then the processes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_every_process() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // NOTE: a request whose place came just before the 429 reached its worker is already on
    // its way; places are 100 ms apart, and the pause reaches the other processes within a
    // few milliseconds (one Redis write, one published message).
    const IN_FLIGHT: Duration = Duration::from_millis(30);
    const PAUSE: Duration = Duration::from_secs(2);

    let redis = RedisServer::start();
    let api = MockApi::start().await;
    let mut script = vec![Reply::ok(); 9];
    script.push(Reply::status(429).header("retry-after", "2"));
    script.push(Reply::ok());
    api.script("/", script);
    let job = Job {
        redis_url: redis.url(),
        name: "acceptance:pause".to_owned(),
        base_url: api.base_url(),
        quotas: vec![(10, SECOND)],
        run_for: Duration::from_secs(5),
        tasks: 2,
    };

    let summaries = job.spawn(3).finish().await;

    let throttled = api.requests()[9].clone();
    let t429 = throttled.at;
    let arrivals = Arrivals::of(&api);
    let during: Vec<Duration> = arrivals
        .0
        .iter()
        .filter(|a| a.at > t429 && a.at < t429 + PAUSE)
        .map(|a| a.at - t429)
        .collect();
    let resumed = arrivals
        .0
        .iter()
        .find(|a| a.at > t429 + IN_FLIGHT)
        .expect("no request after the 429");
    let gap = resumed.at - t429;
    let after = arrivals.workers_from(t429 + PAUSE);
    println!(
        "pause: 429 to worker {}, then {during:?} in flight, next after {gap:?}; \
         workers after the pause {after:?}; {summaries:?}",
        throttled.headers[worker::WORKER_HEADER].to_str().unwrap(),
    );
    let too_many: usize = summaries.iter().map(|s| s.too_many).sum();
    let failed: usize = summaries.iter().map(|s| s.failed).sum();
    assert_eq!((too_many, failed), (1, 0), "{summaries:?}");
    assert!(
        during.iter().all(|&d| d <= IN_FLIGHT),
        "requests arrived during the pause: {during:?} after the 429"
    );
    assert!(gap >= PAUSE, "the pause ended early: {gap:?}");
    // NOTE: a loose bound: this checks that requests resume, not how soon.
    assert!(
        gap < PAUSE + Duration::from_millis(500),
        "requests did not resume after the pause: {gap:?}"
    );
    assert!(
        after.len() >= 2,
        "only workers {after:?} sent requests after the pause"
    );
}

/// 3 processes × 2 tasks under two quotas at once, 5/s and 12 per 3 s: no second holds more
/// than 5 (+1), no 3 s more than 12 (+1), and the tighter of the two (4/s on average) is
/// nearly reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quotas_hold_together() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let redis = RedisServer::start();
    let api = MockApi::start().await;
    let job = Job {
        redis_url: redis.url(),
        name: "acceptance:two-quotas".to_owned(),
        base_url: api.base_url(),
        quotas: vec![(5, SECOND), (12, 3 * SECOND)],
        run_for: Duration::from_secs(6),
        tasks: 2,
    };

    let summaries = job.spawn(3).finish().await;

    let arrivals = Arrivals::of(&api);
    let (from, to) = arrivals.overlap();
    let rate = arrivals.rate(from, to);
    let (densest_1s, densest_3s) = (arrivals.densest(SECOND), arrivals.densest(3 * SECOND));
    let (max_1s, max_3s) = (densest_1s.len(), densest_3s.len());
    println!(
        "two quotas: {} requests, max {max_1s} in 1 s, {max_3s} in 3 s, {rate:.2}/s over {:?} \
         together; {summaries:?}",
        arrivals.len(),
        to - from,
    );
    for s in &summaries {
        assert_eq!((s.too_many, s.failed), (0, 0), "worker {}: {s:?}", s.id);
    }
    assert!(
        max_1s <= 5 + 1,
        "{max_1s} requests in one second, {}",
        arrivals.describe(densest_1s)
    );
    assert!(
        max_3s <= 12 + 1,
        "{max_3s} requests in three seconds, {}",
        arrivals.describe(densest_3s)
    );
    assert!(rate >= 0.9 * 4.0, "{rate:.2}/s is under 90 % of 12 per 3 s");
}
