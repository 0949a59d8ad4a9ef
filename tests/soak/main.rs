//! Soak test (issue 8, "Promises that hold under adversity"): tens of thousands of requests
//! through ONE [`calm::Client`] against a calm-mock server that misbehaves at random, while
//! callers give up at random.
//!
//! # What runs
//!
//! `WORKERS` tasks share one client (`Quota` of 2,000/s, burst 1; `max_retries` 3 with a
//! seeded exponential backoff; per-attempt `timeout` [`ATTEMPT_TIMEOUT`]; client `deadline`
//! [`DEADLINE`]; `max_in_flight` [`MAX_IN_FLIGHT`]) and send the requests `0..n` between
//! them, GETs and POSTs on a few dozen paths. Every request carries its number in
//! `x-request-id`, so the server's log says which request each arrival belongs to.
//!
//! The mock answers from per-path scripts generated from the seed and replaced every second:
//! mostly `200`, and at random `503` (some with `Retry-After: 0`), `502`, `429` (bare, with
//! `Retry-After: 0`, with `X-RateLimit-Remaining: 0` + `X-RateLimit-Reset: <n>ms`, and every
//! `BIG_PAUSE_EVERY` rounds one with `Retry-After: 1`: all of these pause every caller of the
//! limiter), hang-ups ([`Reply::close`]), stalls ([`Reply::stall`], ended by the per-attempt
//! timeout), late answers ([`Reply::delay`]) and trickled bodies ([`Reply::slow_body`]). It
//! also enforces its own quota (5 % above the client's, fixed windows, no quota headers) as a
//! safety net. Callers add their own adversity: some give up after a few milliseconds (the
//! future is dropped, wherever it is: queued for a place, mid-attempt, mid-body), some carry
//! a short per-request retry deadline ([`RetryPolicy::deadline`] through
//! [`RequestBuilder::retry`](calm::RequestBuilder::retry)).
//!
//! Everything random comes from one seed (`CALM_SOAK_SEED`, printed); `CALM_SOAK_REQUESTS`
//! overrides the request count and `CALM_SOAK_QUOTA` the quota. The interleaving of tasks is up to the scheduler, so two runs
//! with one seed share the plan (which request is a POST, gives up, has a deadline; what each
//! script says), not the exact order of events.
//!
//! # What it proves
//!
//! - **No hang.** Every call returns its response head within the client deadline plus
//!   [`SLACK`], and reads its body within [`SLACK`] (each wrapped in `tokio::time::timeout`;
//!   an overrun fails the test with the request's plan), and the whole run ends within
//!   [`RUN_LIMIT`].
//! - **No panic.** Every worker task is joined; a `JoinError` fails the test.
//! - **Flat memory.** Resident memory (`VmRSS`) after the warm-up (the first fifth of the
//!   requests) and at the end differ by less than [`MAX_RSS_GROWTH`]. The mock's log is kept
//!   at its bounded default (10,000 entries, no bodies) and read incrementally, so the figure
//!   measures the client, not an ever-growing test log.
//! - **No window over the quota.** From the server's arrival instants
//!   ([`RecordedRequest::at`]) of *every* attempt, no half-open window `[t, t + 1 s)` holds
//!   more than `quota + burst - 1 = quota` arrivals, and no `[t, t + 10 s)` more than
//!   `10 × quota`, each plus [`JITTER_ALLOWANCE`] worth of requests
//!   (`ceil(150 ms / interval)`: 60 at 400/s, 300 at 2,000/s). The limiter's guarantee holds
//!   for the instants of its slots; a request goes when its task wakes after its slot and is
//!   stamped when the server's task reads it. When the process is held up (two cores shared
//!   with the mock, a debug build, other processes), the requests whose slots passed meanwhile
//!   go together: the log then shows a dip followed by a burst of the same size, e.g. 50 ms
//!   buckets `20, 6, 21, 32, 21` at 400/s, so a 1 s window can hold the quota plus the slots
//!   of one such hold-up (43 over at 400/s was the worst seen on a loaded 2-core machine). The
//!   10 s window is the sharp check: there the allowance is 1.5 % of the quota, and a client
//!   whose retries, pauses or cancellations leaked places would be over by hundreds. The
//!   mock's own fixed-window quota (5 % above the client's) must never have refused a
//!   request (`count_429() == 0`).
//! - **No non-idempotent request sent twice.** POSTs carry no `Idempotency-Key`. calm may
//!   send a POST again only when the very request was never sent (connect error: it never
//!   reaches the server, so it is not in the log) or was refused unprocessed by a `429`. POST
//!   paths are never scripted to answer 429, and the server quota refused nothing (checked
//!   above), so the rule checked is exact: **every POST's `x-request-id` appears at most once
//!   in the server's log.** GETs are retried, but never beyond the policy: at most
//!   `1 + max_retries` arrivals per GET.
//! - **Nothing lost.** The log entries read add up to the server's exact request count.
//!
//! The figures (requests, arrivals, outcomes, wall time, RSS, the fullest window) are
//! printed; run with `--nocapture` to see them.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calm::error::TimedOut;
use calm::ratelimit::error::MaxWaitExceeded;
use calm::retry::error::RetryError;
use calm::{Backoff, Client, Quota, RetryPolicy};
use calm_mock::{MockApi, QuotaHeaders, RecordedRequest, Reply};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tower::timeout::error::Elapsed;

/// The debug build (`cargo test`): the workspace builds its dependencies optimized even there
/// (see the root manifest), so the issue's 50,000 requests at 2,000/s fit in well under a
/// minute too.
const DEBUG: Profile = Profile {
    requests: 50_000,
    quota: 2_000,
};
/// A release build: the issue's 50,000 requests at 2,000/s.
const RELEASE: Profile = Profile {
    requests: 50_000,
    quota: 2_000,
};

#[derive(Clone, Copy, Debug)]
struct Profile {
    requests: usize,
    /// The client's quota, per second (burst 1). The mock's own fixed-window quota is 5 %
    /// above it, a safety net.
    quota: u32,
}

/// The seed unless `CALM_SOAK_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x0ca1_5eed_2024_0008;

/// How late after its slot a request may be stamped by the server and still count as inside
/// the window of its slot; see the module docs.
const JITTER_ALLOWANCE: Duration = Duration::from_millis(150);
/// The long window: there the jitter allowance is 1.5 % of the quota, so a client that let
/// retries (5 % of the attempts here) skip the limiter would be caught.
const LONG_WINDOW: Duration = Duration::from_secs(10);

const WORKERS: usize = 96;
const MAX_IN_FLIGHT: usize = 64;
const MAX_RETRIES: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_secs(3);
/// What a call may take beyond its bound before it counts as hung.
const SLACK: Duration = Duration::from_secs(5);
/// The whole run, workers and checks.
const RUN_LIMIT: Duration = Duration::from_secs(150);
const MAX_RSS_GROWTH: u64 = 64 << 20;
/// The most a small request's entry takes in the mock's log (asserted by calm-mock's tests).
const LOG_ENTRY: u64 = 256;

const GET_PATHS: u64 = 32;
const POST_PATHS: u64 = 32;
const SCRIPT_ROUND: Duration = Duration::from_secs(1);
/// Every this many rounds, one GET script holds a `429 Retry-After: 1`: a one-second pause of
/// the whole client.
const BIG_PAUSE_EVERY: u64 = 10;
const MARKER: &str = "x-request-id";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------
// Randomness: splitmix64 to derive streams, xorshift64* to draw from them.

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);

impl Rng {
    /// A stream for `(seed, parts…)`: one per request, one per script.
    fn new(seed: u64, parts: &[u64]) -> Rng {
        let state = parts
            .iter()
            .fold(splitmix64(seed), |s, p| splitmix64(s ^ p));
        Rng(state | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between_ms(&mut self, lo: u64, hi: u64) -> Duration {
        ms(lo + self.below(hi - lo + 1))
    }
}

// ---------------------------------------------------------------------------------------------
// The server's scripts.

/// One script for a GET path. Every reply kind below is one a well-behaved client must live
/// with; the per-mille weights keep the pauses (which stop every caller) to a few seconds in
/// all.
fn get_script(rng: &mut Rng, len: usize, big_pause: bool) -> Vec<Reply> {
    let mut replies: Vec<Reply> = (0..len)
        .map(|_| match rng.below(1000) {
            0..40 => Reply::status(503),
            40..50 => Reply::status(503).header("retry-after", "0"),
            50..60 => Reply::status(502),
            60..85 => Reply::status(429),
            85..95 => Reply::status(429).header("retry-after", "0"),
            95..97 => Reply::status(429)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", format!("{}ms", 5 + rng.below(26))),
            97..117 => Reply::close().delay(rng.between_ms(0, 5)),
            117..127 => Reply::stall(),
            127..157 => slow_body(rng),
            157..207 => Reply::ok().delay(rng.between_ms(1, 20)),
            _ => Reply::ok(),
        })
        .collect();
    if big_pause {
        replies[len / 4] = Reply::status(429).header("retry-after", "1");
    }
    finish(replies)
}

/// One script for a POST path: the same faults, but never a 429 (see the module docs).
fn post_script(rng: &mut Rng, len: usize) -> Vec<Reply> {
    let replies = (0..len)
        .map(|_| match rng.below(1000) {
            0..40 => Reply::status(503),
            40..50 => Reply::status(503).header("retry-after", "0"),
            50..60 => Reply::status(502),
            60..80 => Reply::close().delay(rng.between_ms(0, 5)),
            80..90 => Reply::stall(),
            90..120 => slow_body(rng),
            120..170 => Reply::ok().delay(rng.between_ms(1, 20)),
            _ => Reply::status(201).body("created"),
        })
        .collect();
    finish(replies)
}

fn slow_body(rng: &mut Rng) -> Reply {
    let chunks = 2 + rng.below(4) as usize;
    Reply::ok()
        .body(vec![b'x'; 512])
        .slow_body(chunks, rng.between_ms(2, 15))
}

/// The last reply of a script repeats until the next round: make it a plain success.
fn finish(mut replies: Vec<Reply>) -> Vec<Reply> {
    replies.push(Reply::ok());
    replies
}

fn get_path(k: u64) -> String {
    format!("/soak/get/{k}")
}

fn post_path(k: u64) -> String {
    format!("/soak/post/{k}")
}

/// Scripts every path for one [`SCRIPT_ROUND`]. A path gets twice the replies it can use in a
/// round at the quota's pace, so it never runs out before the next round replaces its script.
fn script_round(api: &MockApi, seed: u64, quota: u32, round: u64) {
    let len = (2 * quota as usize).div_ceil(GET_PATHS.min(POST_PATHS) as usize) + 16;
    for k in 0..GET_PATHS {
        let mut rng = Rng::new(seed, &[1, k, round]);
        let big_pause = k == round % GET_PATHS && round % BIG_PAUSE_EVERY == BIG_PAUSE_EVERY - 1;
        api.script(&get_path(k), get_script(&mut rng, len, big_pause));
    }
    for k in 0..POST_PATHS {
        let mut rng = Rng::new(seed, &[2, k, round]);
        api.script(&post_path(k), post_script(&mut rng, len));
    }
}

// ---------------------------------------------------------------------------------------------
// The callers.

/// What request `id` does, drawn from the seed alone.
#[derive(Clone, Debug)]
struct Plan {
    id: u64,
    post: bool,
    path: String,
    /// A per-request retry deadline.
    retry_deadline: Option<Duration>,
    /// The caller drops the call after this long.
    give_up_after: Option<Duration>,
}

impl Plan {
    fn new(seed: u64, id: u64) -> Plan {
        let mut rng = Rng::new(seed, &[0, id]);
        let post = rng.below(100) < 40;
        let path = if post {
            post_path(rng.below(POST_PATHS))
        } else {
            get_path(rng.below(GET_PATHS))
        };
        let retry_deadline = (rng.below(100) < 10).then(|| rng.between_ms(20, 800));
        let give_up_after = (rng.below(1000) < 30).then(|| rng.between_ms(1, 60));
        Plan {
            id,
            post,
            path,
            retry_deadline,
            give_up_after,
        }
    }
}

fn policy(seed: u64) -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(MAX_RETRIES)
        .backoff(Backoff::exponential(ms(5)).max(ms(80)).seed(seed))
}

/// How one call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Status(u16),
    /// The client's whole-request deadline passed.
    Deadline,
    /// The retries ended on a per-attempt timeout.
    AttemptTimeout,
    /// The rate limiter's place lay past the deadline.
    MaxWait,
    /// The retries ended on another error (hang-up, connect).
    Transport,
    /// Any other error: listed, and looked at in the report.
    Other,
    /// The response head came, the body failed (a slow body cut short is not expected).
    BodyError,
    /// The caller gave up.
    GaveUp,
    /// No answer within the bound: a hang.
    Hung,
}

fn classify(error: &calm::Error) -> Outcome {
    if error.find_source::<TimedOut>().is_some() {
        return Outcome::Deadline;
    }
    if let Some(retry) = error.find_source::<RetryError>() {
        if retry.find_source::<Elapsed>().is_some() {
            return Outcome::AttemptTimeout;
        }
        if retry.find_source::<MaxWaitExceeded>().is_some() {
            return Outcome::MaxWait;
        }
        return Outcome::Transport;
    }
    Outcome::Other
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<Outcome, u64>,
    /// Requests that overran their bound, with what they were doing.
    hung: Vec<String>,
    /// Errors outside the expected kinds.
    odd_errors: Vec<String>,
    slowest_head: Duration,
}

async fn call(client: &Client, seed: u64, plan: &Plan, tally: &Mutex<Tally>) -> Outcome {
    let mut request = if plan.post {
        client.post(&plan.path).body(r#"{"soak":true}"#)
    } else {
        client.get(&plan.path)
    };
    request = request.header(MARKER, plan.id);
    if let Some(deadline) = plan.retry_deadline {
        request = request.retry(policy(seed).deadline(deadline));
    }
    let started = Instant::now();
    let sent = match timeout(DEADLINE + SLACK, request.send()).await {
        Ok(sent) => sent,
        Err(_) => {
            lock(tally).hung.push(format!("{plan:?}: no response head"));
            return Outcome::Hung;
        }
    };
    {
        let mut tally = lock(tally);
        tally.slowest_head = tally.slowest_head.max(started.elapsed());
    }
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match timeout(SLACK, response.bytes()).await {
                Ok(Ok(_)) => Outcome::Status(status),
                // NOTE: the deadline covers the body too.
                Ok(Err(e)) if e.is_timeout() => Outcome::Deadline,
                Ok(Err(e)) => {
                    lock(tally).odd_errors.push(format!("{plan:?}: body: {e}"));
                    Outcome::BodyError
                }
                Err(_) => {
                    lock(tally).hung.push(format!("{plan:?}: body never ended"));
                    Outcome::Hung
                }
            }
        }
        Err(error) => {
            let outcome = classify(&error);
            if outcome == Outcome::Other {
                lock(tally).odd_errors.push(format!("{plan:?}: {error}"));
            }
            outcome
        }
    }
}

async fn worker(
    client: Client,
    seed: u64,
    total: usize,
    next: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    tally: Arc<Mutex<Tally>>,
) {
    loop {
        let id = next.fetch_add(1, Ordering::Relaxed);
        if id >= total {
            return;
        }
        let plan = Plan::new(seed, id as u64);
        let outcome = match plan.give_up_after {
            None => call(&client, seed, &plan, &tally).await,
            // NOTE: dropping the future is the cancellation under test.
            Some(patience) => timeout(patience, call(&client, seed, &plan, &tally))
                .await
                .unwrap_or(Outcome::GaveUp),
        };
        *lock(&tally).outcomes.entry(outcome).or_default() += 1;
        done.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// What the server saw.

/// What the server's log says: every arrival, and arrivals per request id.
struct Observed {
    arrivals: Vec<Instant>,
    /// Arrivals per request id, POSTs and GETs apart.
    post_arrivals: Vec<u8>,
    get_arrivals: Vec<u8>,
    unmarked: u64,
}

impl Observed {
    fn read(api: &MockApi, total: usize) -> Observed {
        let log = api.requests();
        let mut observed = Observed {
            arrivals: Vec::with_capacity(log.len()),
            post_arrivals: vec![0; total],
            get_arrivals: vec![0; total],
            unmarked: 0,
        };
        for r in &log {
            observed.arrivals.push(r.at);
            let Some(id) = marker(r).filter(|&id| id < total) else {
                observed.unmarked += 1;
                continue;
            };
            let counts = if r.method == http::Method::POST {
                &mut observed.post_arrivals
            } else {
                &mut observed.get_arrivals
            };
            counts[id] = counts[id].saturating_add(1);
        }
        observed
    }
}

fn marker(r: &RecordedRequest) -> Option<usize> {
    r.headers.get(MARKER)?.to_str().ok()?.parse().ok()
}

/// The fullest half-open window `[t, t + width)`: its count and where it starts.
fn fullest_window(arrivals: &[Instant], width: Duration) -> (usize, Option<Instant>) {
    debug_assert!(arrivals.is_sorted());
    let (mut best, mut at, mut j) = (0, None, 0);
    for i in 0..arrivals.len() {
        while j < arrivals.len() && arrivals[j] < arrivals[i] + width {
            j += 1;
        }
        if j - i > best {
            best = j - i;
            at = Some(arrivals[i]);
        }
    }
    (best, at)
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} does not parse")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_keeps_its_promises_under_adversity() {
    let seed: u64 = env_or("CALM_SOAK_SEED", DEFAULT_SEED);
    let profile = if cfg!(debug_assertions) {
        DEBUG
    } else {
        RELEASE
    };
    let total: usize = env_or("CALM_SOAK_REQUESTS", profile.requests);
    let quota_per_s: u32 = env_or("CALM_SOAK_QUOTA", profile.quota);
    assert!(total >= 1_000, "a soak needs at least 1,000 requests");
    println!(
        "soak: seed {seed:#x}, {total} requests at {quota_per_s}/s, {} build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let api = MockApi::builder()
        .quota(quota_per_s + quota_per_s / 20, Duration::from_secs(1))
        .quota_headers(QuotaHeaders::None)
        // NOTE: every arrival is kept and read once at the end. Reading the log holds its lock
        // while it copies every entry, which stalls the server for as long (100 ms for 10,000
        // entries in a debug build): reading it during the run would disturb what is measured.
        .log_limit(usize::MAX)
        .record_bodies(false)
        .start()
        .await;
    let n = |n| NonZeroU32::new(n).unwrap();
    let quota = Quota::per_second(n(quota_per_s));
    let client = Client::builder(api.base_url())
        .rate_limit(quota)
        .retry(policy(seed))
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .timeout(DEADLINE)
        .max_in_flight(MAX_IN_FLIGHT)
        .build()
        .expect("a valid client");

    let mut round = 0;
    script_round(&api, seed, quota_per_s, round);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let workers: Vec<JoinHandle<()>> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                seed,
                total,
                Arc::clone(&next),
                Arc::clone(&done),
                Arc::clone(&tally),
            ))
        })
        .collect();

    // Replace the scripts every round while the workers run.
    let mut next_round = started + SCRIPT_ROUND;
    let mut warm: Option<(u64, usize, Duration)> = None;
    let mut last_report = started;
    while !workers.iter().all(JoinHandle::is_finished) {
        assert!(
            started.elapsed() < RUN_LIMIT,
            "the run did not end within {RUN_LIMIT:?}: {} of {total} requests done",
            done.load(Ordering::Relaxed)
        );
        sleep(ms(50)).await;
        let now = Instant::now();
        if now >= next_round {
            round += 1;
            script_round(&api, seed, quota_per_s, round);
            next_round += SCRIPT_ROUND;
        }
        let finished = done.load(Ordering::Relaxed);
        if warm.is_none() && finished >= total / 5 {
            warm = Some((rss_bytes(), api.request_count(), started.elapsed()));
        }
        if now - last_report >= Duration::from_secs(5) {
            last_report = now;
            println!(
                "soak: {:>5.1} s  {finished:>6} done  {:>6} arrivals  RSS {:.1} MiB",
                started.elapsed().as_secs_f64(),
                api.request_count(),
                mib(rss_bytes())
            );
        }
    }
    let wall = started.elapsed();
    for worker in workers {
        if let Err(e) = worker.await {
            panic!("a worker task failed: {e}");
        }
    }
    let end_rss = rss_bytes();
    let mut observed = Observed::read(&api, total);
    let (warm_rss, warm_arrivals, warm_at) = warm.expect("the warm-up ended");
    let tally = Arc::try_unwrap(tally)
        .ok()
        .expect("workers are done")
        .into_inner()
        .unwrap();
    let stats = client.stats();

    // ---- figures
    let arrivals = api.request_count();
    observed.arrivals.sort_unstable();
    let (fullest, fullest_at) = fullest_window(&observed.arrivals, Duration::from_secs(1));
    let (fullest_long, _) = fullest_window(&observed.arrivals, LONG_WINDOW);
    let (densest, densest_at) = fullest_window(&observed.arrivals, ms(10));
    let long_allowed = (LONG_WINDOW.as_nanos() / 1_000_000_000) as usize * quota_per_s as usize
        + quota.burst_size().get() as usize
        - 1;
    let interval = quota.interval();
    let allowance = JITTER_ALLOWANCE.as_nanos().div_ceil(interval.as_nanos()) as usize;
    let allowed = quota_per_s as usize + quota.burst_size().get() as usize - 1;
    let duplicated_posts = observed.post_arrivals.iter().filter(|&&c| c > 1).count();
    let posts_seen = observed.post_arrivals.iter().filter(|&&c| c > 0).count();
    let most_get_attempts = observed.get_arrivals.iter().copied().max().unwrap_or(0);
    println!(
        "soak: wall {:.1} s for {total} requests ({:.0}/s)",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64()
    );
    println!(
        "soak: arrivals at the server {arrivals} over {} connections; server quota 429s {}",
        api.connections(),
        api.count_429()
    );
    println!("soak: outcomes {:?}", tally.outcomes);
    println!(
        "soak: client stats: requests {}, attempts {}, retries {:?}, errors {}, 429s {}, server pauses {}, rate-limit waits {} ({:.1} s in all)",
        stats.requests,
        stats.attempts,
        stats.retries_by_reason,
        stats.errors,
        stats.responses_429,
        stats.server_pauses,
        stats.rate_limit_waits,
        stats.rate_limit_wait.as_secs_f64()
    );
    println!(
        "soak: slowest response head {:.0} ms (bound {:?})",
        tally.slowest_head.as_secs_f64() * 1e3,
        DEADLINE + SLACK
    );
    // The mock's log grows by at most LOG_ENTRY bytes per arrival (calm-mock's own tests
    // bound it); the rest of the growth is the client's (and the mock's connections).
    let log_growth = (arrivals - warm_arrivals) as u64 * LOG_ENTRY;
    println!(
        "soak: RSS after warm-up ({:.1} s) {:.1} MiB, at the end {:.1} MiB, growth {:+.1} MiB (bound {:.0} MiB), of which up to {:.1} MiB is the mock's log",
        warm_at.as_secs_f64(),
        mib(warm_rss),
        mib(end_rss),
        mib(end_rss) - mib(warm_rss),
        mib(MAX_RSS_GROWTH),
        mib(log_growth),
    );
    println!(
        "soak: fullest 1 s window {fullest} arrivals (at +{:.3} s); quota {quota_per_s} + burst-1 = {allowed}, + jitter allowance {allowance} = {}",
        fullest_at.map_or(0.0, |at| (at - started).as_secs_f64()),
        allowed + allowance
    );
    println!(
        "soak: fullest {LONG_WINDOW:?} window {fullest_long} arrivals; quota {long_allowed}, + jitter allowance {allowance} = {}",
        long_allowed + allowance
    );
    println!(
        "soak: densest 10 ms {densest} arrivals (at +{:.3} s; the slots of {:.0} ms at the quota's pace)",
        densest_at.map_or(0.0, |at| (at - started).as_secs_f64()),
        densest as f64 * interval.as_secs_f64() * 1e3
    );
    println!(
        "soak: POSTs seen by the server {posts_seen}, sent twice {duplicated_posts}; most arrivals of one GET {most_get_attempts} (bound {})",
        1 + MAX_RETRIES
    );
    for line in tally.hung.iter().chain(&tally.odd_errors).take(20) {
        println!("soak: !! {line}");
    }

    // ---- the promises
    assert!(
        tally.hung.is_empty(),
        "{} calls hung: {:#?}",
        tally.hung.len(),
        tally.hung
    );
    let counted: u64 = tally.outcomes.values().sum();
    assert_eq!(
        counted, total as u64,
        "every request ended, one way or another"
    );
    assert!(
        tally.odd_errors.is_empty(),
        "unexpected errors: {:#?}",
        tally.odd_errors
    );
    assert_eq!(observed.unmarked, 0, "every arrival carries its request id");
    assert_eq!(
        observed.arrivals.len(),
        arrivals,
        "every arrival was read from the log"
    );
    assert!(
        end_rss.saturating_sub(warm_rss) < MAX_RSS_GROWTH,
        "resident memory grew from {:.1} MiB to {:.1} MiB",
        mib(warm_rss),
        mib(end_rss)
    );
    assert!(
        fullest <= allowed + allowance,
        "a 1 s window at the server held {fullest} arrivals; the quota allows {allowed} (+{allowance} for delivery jitter)"
    );
    assert!(
        fullest_long <= long_allowed + allowance,
        "a {LONG_WINDOW:?} window at the server held {fullest_long} arrivals; the quota allows {long_allowed} (+{allowance} for delivery jitter)"
    );
    assert_eq!(
        api.count_429(),
        0,
        "the server's own quota refused requests"
    );
    assert_eq!(
        duplicated_posts,
        0,
        "POSTs without Idempotency-Key sent twice: {:?}",
        observed
            .post_arrivals
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 1)
            .take(20)
            .collect::<Vec<_>>()
    );
    assert!(
        most_get_attempts as u32 <= 1 + MAX_RETRIES,
        "a GET arrived {most_get_attempts} times"
    );
}
