//! Loopback throughput: calm's whole `Client` stack against the raw hyper-util client and
//! against a stack assembled from ecosystem parts, on the same calm-mock server, in one run.
//!
//! Run with: `cargo bench -p calm --bench loopback [-- OPTIONS]`
//!
//! # What is measured
//!
//! Every variant sends `GET /x` to a calm-mock server (plain HTTP/1.1, answer `200 ok`) and
//! reads the whole response body; any other status or an error aborts the bench. All variants
//! of a round talk to the same server.
//!
//! The default variants, in the order of the table they print:
//!
//! - `raw`: hyper-util's legacy `Client` over `HttpConnector`, with the pool and TCP settings
//!   of calm's default transport; a pre-parsed absolute `Uri`. The reference of the ratios.
//! - `tower`: what one would assemble from ecosystem parts for retries and pacing, over the raw
//!   client: `tower::retry::Retry` (a 503 retried at once, up to 3 times, cloning every
//!   request) → a governor `RateLimiter::direct` (10_000_000/s) awaited with `until_ready()`
//!   in a ten-line service → tower's `ConcurrencyLimit` (1024). See `support/tower_stack.rs`.
//! - `tower-full`: `tower` behind tower-http's `SetRequestHeader` (a default `User-Agent`) and a
//!   base-URL rewrite, sent a path: the same concerns as calm's three layers.
//! - `layers`: calm's three layers composed by hand (`SharedClientLayer` → `RetryLayer` →
//!   `RateLimitLayer`, default retry policy, 10_000_000/s) over the raw client, sent a path.
//! - `calm-over-raw`: `calm::Client` built with `build_with` over the raw client, used as a
//!   newcomer would: `client.get("/x").send()`, the body read with `bytes()`.
//! - `calm`: `calm::Client::builder(base).rate_limit(10_000_000/s).retry(default).build()`
//!   (calm's own transport), used the same way.
//! - `calm-redis` (with `--features redis` only): `calm` with the rate limiter of
//!   calm-ratelimit-redis instead of the in-process one,
//!   `calm_builder(base).limiter(RedisBackend::builder(url, name).quota(q).limiter())`, the
//!   quota 10_000_000/s with a burst as large, so it never binds. Every request makes a round
//!   trip to a redis-server the bench starts on a free loopback port for the whole run
//!   (`redis-server` on `PATH`, as for calm-ratelimit-redis's tests); concurrent requests
//!   share round trips. Its `cpu/req` leaves out redis-server's CPU (another process).
//!
//! Diagnostic variants, run only when named with `--variants` (used to find which part of
//! calm's stack costs what):
//!
//! - `calm-svc`: the `calm` client through `Service::call` on a ready clone, with an absolute
//!   request built from a parsed `Uri` (skips `RequestBuilder` and `Response`).
//! - `calm-norl`: `calm` without the rate limiter; `calm-noretry`: `calm` with `no_retries()`;
//!   `calm-bare`: neither.
//! - `transport`: calm's `Transport` alone, called like `raw`.
//! - `calm-info`, `calm-debug`: `calm` with a `tracing-subscriber` registry recording spans at
//!   INFO (calm's request spans) or DEBUG (its attempt spans too); `calm-info-fmt`,
//!   `calm-debug-fmt`: the same with a fmt layer formatting them (into a sink). The subscriber
//!   is the default of the sending tasks only (`WithSubscriber`); every variant's tasks run
//!   the same way, with no subscriber for the others. Compare them with
//!   `--variants calm,calm-info,calm-debug,calm-info-fmt,calm-debug-fmt` for what seeing
//!   calm's spans costs.
//!
//! For what each layer costs per call without the network, see the `per_call` and
//! `allocations` benches and `benches/instructions.sh`. For figures of this very path that do
//! not move with the machine's load: `benches/loopback_instructions.sh` counts the
//! instructions of this bench's client thread per request under callgrind, and the
//! `allocations` bench the allocations per request over loopback.
//!
//! Each measurement is preceded by a warm-up in the same mode. Variants are interleaved: every
//! round runs each mode once for each variant, rotating the order from round to round so no
//! variant always runs first or last. Figures: requests/s is the median over rounds; p50/p99
//! are taken over the latencies of all rounds together; the ratio to the first variant is the
//! median of the per-round ratios (a round's variants run within seconds of each other, so
//! drift cancels). `cpu/req` is the CPU time the client and the server runtime's threads
//! spent per request (Linux only), median over rounds: it moves much less than wall time when
//! other programs load the machine, so it shows what a variant costs even on a noisy run.
//!
//! # Threads
//!
//! The server runs in its own multi-thread tokio runtime and the clients in another, one
//! worker each by default: on a 2-core machine that gives client and server a core each
//! instead of making them share workers. (Two client workers were measured too: raw
//! throughput drops and varies more, and a variant that costs more CPU per request loses
//! more, as its extra work competes with the server for the cores.)
//!
//! On a virtual machine the sequential figures are dominated by waking the other core twice
//! per request, which varies a lot from run to run. Running the whole bench on one core
//! (`taskset -c 0 cargo bench -p calm --bench loopback`) takes those wake-ups out: client and
//! server then alternate on that core, and the sequential ratio shows the CPU each variant
//! adds per request much more steadily.
//!
//! # Options
//!
//! A flag after `--`, or the environment variable; the flag wins.
//!
//! | flag | variable | default | meaning |
//! |---|---|---|---|
//! | `--sequential N` | `CALM_BENCH_SEQUENTIAL` | 10000 | requests per variant per round, one at a time |
//! | `--concurrent N` | `CALM_BENCH_CONCURRENT` | 40000 | requests per variant per round, `--in-flight` at a time |
//! | `--in-flight N` | `CALM_BENCH_IN_FLIGHT` | 32 | requests in flight in the concurrent mode |
//! | `--warmup N` | `CALM_BENCH_WARMUP` | 1000 | warm-up requests before each measurement |
//! | `--rounds N` | `CALM_BENCH_ROUNDS` | 6 | rounds of every variant and mode |
//! | `--variants LIST` | `CALM_BENCH_VARIANTS` | `raw,tower,tower-full,layers,calm-over-raw,calm`; with `redis`, and `calm-redis` | comma-separated variants (the first is the reference of the ratios) |
//! | `--client-threads N` | `CALM_BENCH_CLIENT_THREADS` | 1 | worker threads of the client runtime |
//! | `--server-threads N` | `CALM_BENCH_SERVER_THREADS` | 1 | worker threads of the server runtime |
//!
//! Without `--bench` (as `cargo test --benches` runs it) the defaults shrink to one quick round
//! that only checks every variant works, and arguments other than the options are ignored.
//!
//! The defaults take about 40 s on a 2-core machine, 70 s with `calm-redis` (`--rounds 3`
//! halves that). Each round starts a fresh server and fresh clients, because calm-mock records
//! every request it receives (a few KB each): a default round holds about 0.7 GB at its end,
//! freed before the next.

#[path = "support/raw_client.rs"]
mod raw_client;
#[cfg(feature = "redis")]
#[path = "../crates/calm-ratelimit-redis/tests/support/mod.rs"]
mod support;
#[path = "support/tower_stack.rs"]
mod tower_stack;

/// The `tracing` subscriber a variant runs with.
mod tracing_level {
    use tracing::Dispatch;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::Variant;

    /// The registry alone at INFO or DEBUG for `calm-info` / `calm-debug`, with a fmt layer
    /// (writing to a sink) for the `-fmt` variants; none for the others.
    pub(super) fn dispatch(variant: Variant) -> Dispatch {
        let (level, formatted) = match variant {
            Variant::CalmInfo => (LevelFilter::INFO, false),
            Variant::CalmDebug => (LevelFilter::DEBUG, false),
            Variant::CalmInfoFmt => (LevelFilter::INFO, true),
            Variant::CalmDebugFmt => (LevelFilter::DEBUG, true),
            _ => return Dispatch::none(),
        };
        let registry = tracing_subscriber::registry().with(level);
        if formatted {
            Dispatch::new(registry.with(fmt::layer().with_writer(std::io::sink)))
        } else {
            Dispatch::new(registry)
        }
    }
}

use std::env;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use calm::client::transport::Transport;
use calm::client::{SharedClient, SharedClientLayer};
use calm::ratelimit::RateLimit;
use calm::{Body, Client, Quota, RetryPolicy};
use calm_mock::MockApi;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tracing::instrument::WithSubscriber;
use tracing::Dispatch;

use raw_client::{raw_client, RawClient};

/// The rate of every client-side limiter: far above what one machine can send.
const QUOTA_PER_SECOND: u32 = 10_000_000;
const PATH: &str = "/x";
const CLIENT_THREADS: &str = "bench-client";
const SERVER_THREADS: &str = "mock-server";

/// Wall-clock time.
///
/// NOTE: a bench measures real elapsed time, so it needs `std::time::Instant`; the ban in
/// `.clippy.toml` keeps library code on tokio's pausable clock and does not apply here.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() {
    let config = Config::from_env_and_args();
    println!("{config}");
    println!(
        "threads: server runtime {} worker(s), client runtime {} worker(s), {} cores available",
        config.server_threads,
        config.client_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server_threads)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.client_threads)
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()
        .expect("client runtime");

    // NOTE: one redis-server for the whole run, started only if a variant uses it and
    // killed when dropped at the end of `main`.
    #[cfg(feature = "redis")]
    let redis = config
        .variants
        .contains(&Variant::CalmRedis)
        .then(support::RedisServer::start);
    #[cfg(feature = "redis")]
    let redis_url = redis.as_ref().map(support::RedisServer::url);

    let started = now();
    let mut results = Results::new(&config);
    let mut totals = Totals::default();
    for round in 0..config.rounds {
        // NOTE: a fresh server (and fresh clients) per round: calm-mock keeps every request it
        // receives, several KB each, so one server for the whole run would grow by gigabytes.
        // Within a round every variant talks to the same server.
        let api = server_rt.block_on(MockApi::start());
        let servers = Servers {
            base: &api.base_url(),
            #[cfg(feature = "redis")]
            redis: redis_url.as_deref(),
        };
        let targets: Vec<Target> = {
            let _guard = client_rt.enter();
            config
                .variants
                .iter()
                .map(|&variant| Target::new(variant, servers))
                .collect()
        };
        for mode in [Mode::Sequential, Mode::Concurrent] {
            for i in 0..targets.len() {
                let index = (i + round) % targets.len();
                let run = measure(&client_rt, &targets[index], mode, &config);
                let (client_cpu, server_cpu) =
                    run.cpu_per_request().unwrap_or((f64::NAN, f64::NAN));
                let (p50, p99) = p50_p99(&run.latencies);
                println!(
                    "round {} {:<10} {:<14} {:>9.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  \
                     cpu/req client {:>5.1} µs server {:>5.1} µs",
                    round + 1,
                    mode.to_string(),
                    targets[index].variant.to_string(),
                    run.per_second(),
                    p50,
                    p99,
                    client_cpu,
                    server_cpu,
                );
                results.add(mode, index, run);
            }
        }
        totals.add(&api, &targets);
        drop(targets);
        let _guard = server_rt.enter();
        drop(api);
    }
    let elapsed = started.elapsed();
    println!();
    results.print(&config);
    println!("\nmeasured in {:.1} s", elapsed.as_secs_f64());
    totals.print();

    client_rt.shutdown_background();
    server_rt.shutdown_background();
}

/// Warms `target` up, then measures it in `mode`, on a worker of `client_rt`.
fn measure(client_rt: &Runtime, target: &Target, mode: Mode, config: &Config) -> Run {
    let (count, in_flight) = match mode {
        Mode::Sequential => (config.sequential, 1),
        Mode::Concurrent => (config.concurrent, config.in_flight),
    };
    let warmup = config.warmup;
    let dispatch = tracing_level::dispatch(target.variant);
    let target = target.clone();
    // NOTE: the measuring loop runs as a task on a worker: `block_on` would poll it on the
    // main thread and add a thread hop to every request.
    let run = client_rt.spawn(async move {
        drive(&target, warmup, in_flight, &dispatch).await;
        let before = cpu_times();
        let mut run = drive(&target, count, in_flight, &dispatch).await;
        run.cpu = before
            .zip(cpu_times())
            .map(|((c0, s0), (c1, s1))| (c1 - c0, s1 - s0));
        run
    });
    client_rt
        .block_on(run)
        .expect("the measuring task panicked")
}

/// What the servers and calm's clients counted over the whole run, to show that nothing
/// failed, was retried or waited for the rate limiter.
#[derive(Debug, Default)]
struct Totals {
    requests: usize,
    connections: usize,
    /// Per calm variant: requests, attempts, retries, errors, rate-limit waits, round trips
    /// to the limiter's shared store, time waited.
    calm: Vec<(Variant, [u64; 6], Duration)>,
}

impl Totals {
    fn add(&mut self, api: &MockApi, targets: &[Target]) {
        self.requests += api.request_count();
        self.connections += api.connections();
        for target in targets {
            let (Kind::Calm(client) | Kind::CalmSvc(client, _)) = &target.kind else {
                continue;
            };
            let stats = client.stats();
            let round_trips = client
                .limiter()
                .and_then(|limiter| limiter.snapshot().store)
                .map_or(0, |store| store.round_trips);
            let counts = [
                stats.requests,
                stats.attempts,
                stats.retries(),
                stats.errors,
                stats.rate_limit_waits,
                round_trips,
            ];
            match self.calm.iter_mut().find(|(v, _, _)| *v == target.variant) {
                Some((_, sums, waited)) => {
                    for (sum, n) in sums.iter_mut().zip(counts) {
                        *sum += n;
                    }
                    *waited += stats.rate_limit_wait;
                }
                None => self
                    .calm
                    .push((target.variant, counts, stats.rate_limit_wait)),
            }
        }
    }

    fn print(&self) {
        println!(
            "servers: {} requests over {} connections",
            self.requests, self.connections
        );
        for (variant, [requests, attempts, retries, errors, waits, round_trips], waited) in
            &self.calm
        {
            let store = if *round_trips > 0 {
                format!(", {round_trips} round trips to the limiter's store")
            } else {
                String::new()
            };
            println!(
                "{variant} stats: {requests} requests, {attempts} attempts, {retries} retries, \
                 {errors} errors, {waits} rate-limit waits ({waited:?}){store}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Variants

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Raw,
    Calm,
    #[cfg(feature = "redis")]
    CalmRedis,
    Tower,
    TowerFull,
    CalmSvc,
    CalmNoRateLimit,
    CalmNoRetry,
    CalmBare,
    CalmOverRaw,
    Transport,
    Layers,
    CalmInfo,
    CalmDebug,
    CalmInfoFmt,
    CalmDebugFmt,
}

impl Variant {
    const ALL: &'static [(Variant, &'static str)] = &[
        (Variant::Raw, "raw"),
        (Variant::Calm, "calm"),
        #[cfg(feature = "redis")]
        (Variant::CalmRedis, "calm-redis"),
        (Variant::Tower, "tower"),
        (Variant::TowerFull, "tower-full"),
        (Variant::CalmSvc, "calm-svc"),
        (Variant::CalmNoRateLimit, "calm-norl"),
        (Variant::CalmNoRetry, "calm-noretry"),
        (Variant::CalmBare, "calm-bare"),
        (Variant::CalmOverRaw, "calm-over-raw"),
        (Variant::Transport, "transport"),
        (Variant::Layers, "layers"),
        (Variant::CalmInfo, "calm-info"),
        (Variant::CalmDebug, "calm-debug"),
        (Variant::CalmInfoFmt, "calm-info-fmt"),
        (Variant::CalmDebugFmt, "calm-debug-fmt"),
    ];

    /// What runs without `--variants`: the reference, the two tower-assembled stacks, calm's
    /// layers, calm's `Client` over the raw client and over its own transport (and calm-redis,
    /// with the `redis` feature).
    fn defaults() -> Vec<Variant> {
        Vec::from([
            Variant::Raw,
            Variant::Tower,
            Variant::TowerFull,
            Variant::Layers,
            Variant::CalmOverRaw,
            Variant::Calm,
            #[cfg(feature = "redis")]
            Variant::CalmRedis,
        ])
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Variant::ALL
            .iter()
            .find(|(v, _)| v == self)
            .map_or("?", |(_, name)| name);
        f.write_str(name)
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Variant::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(v, _)| *v)
            .ok_or_else(|| {
                let names: Vec<_> = Variant::ALL.iter().map(|(_, name)| *name).collect();
                format!("unknown variant {s:?}; known: {}", names.join(", "))
            })
    }
}

fn calm_builder(base: &str) -> calm::ClientBuilder {
    Client::builder(base)
        .rate_limit(Quota::per_second(nonzero(QUOTA_PER_SECOND)))
        .retry(RetryPolicy::default())
}

/// `calm` with a rate limiter whose state lives in the Redis at `url`, instead of in-process.
#[cfg(feature = "redis")]
fn calm_redis_builder(base: &str, url: &str) -> calm::ClientBuilder {
    // NOTE: the Redis scripts count whole microseconds, so this rate becomes one place per µs
    // there; with the default burst of 1 the requests of one round trip would get places 1 µs
    // apart and all but the first would sleep until theirs, which tokio's timer rounds up to
    // the next millisecond. A burst as large as the rate keeps the quota from binding.
    let quota = Quota::per_second(nonzero(QUOTA_PER_SECOND)).burst(nonzero(QUOTA_PER_SECOND));
    let limiter = calm::redis::RedisBackend::builder(url, "bench:loopback")
        .quota(quota)
        .limiter()
        .expect("a valid Redis limiter");
    calm_builder(base).limiter(limiter)
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("a non-zero constant")
}

type TowerRaw = RawClient<Full<Bytes>>;

type LayersStack = SharedClient<calm::retry::Retry<RateLimit<RawClient<Full<Bytes>>>>>;

/// calm's three layers composed by hand over the raw client, without the `Client` facade.
fn layers(base: &str) -> LayersStack {
    ServiceBuilder::new()
        .layer(SharedClientLayer::new(base).expect("a valid base URL"))
        .layer(calm::RetryLayer::new(RetryPolicy::default()).expect("a valid policy"))
        .layer(
            calm::RateLimitLayer::new(Quota::per_second(nonzero(QUOTA_PER_SECOND)))
                .server_hints(true),
        )
        .service(raw_client())
}

fn uri(base: &str) -> Uri {
    format!("{}{}", base.trim_end_matches('/'), PATH)
        .parse()
        .expect("a valid URI")
}

/// What one round's variants talk to.
#[derive(Clone, Copy, Debug)]
struct Servers<'a> {
    /// The calm-mock server's base URL.
    base: &'a str,
    /// The run's redis-server, if a variant uses it.
    #[cfg(feature = "redis")]
    redis: Option<&'a str>,
}

/// One variant, ready to be cloned into every task that sends with it.
#[derive(Clone)]
struct Target {
    variant: Variant,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Raw(RawClient<Full<Bytes>>, Uri),
    Transport(Transport<Full<Bytes>>, Uri),
    Tower(tower_stack::TowerStack<TowerRaw>, Uri),
    TowerFull(tower_stack::TowerFullStack<TowerRaw>, Uri),
    Calm(Client),
    CalmSvc(Client, Uri),
    Layers(LayersStack, Uri),
}

impl Target {
    fn new(variant: Variant, servers: Servers<'_>) -> Target {
        let base = servers.base;
        let built = |builder: calm::ClientBuilder| builder.build().expect("calm client");
        let kind = match variant {
            Variant::Raw => Kind::Raw(raw_client(), uri(base)),
            Variant::Transport => {
                Kind::Transport(Transport::builder().build().expect("transport"), uri(base))
            }
            Variant::Tower => Kind::Tower(
                tower_stack::tower_stack(raw_client(), nonzero(QUOTA_PER_SECOND)),
                uri(base),
            ),
            Variant::TowerFull => {
                let base_uri: Uri = base.parse().expect("a valid base URL");
                let stack = tower_stack::tower_full_stack(
                    raw_client(),
                    nonzero(QUOTA_PER_SECOND),
                    &base_uri,
                );
                Kind::TowerFull(stack, PATH.parse().expect("a valid path"))
            }
            Variant::Calm
            | Variant::CalmInfo
            | Variant::CalmDebug
            | Variant::CalmInfoFmt
            | Variant::CalmDebugFmt => Kind::Calm(built(calm_builder(base))),
            #[cfg(feature = "redis")]
            Variant::CalmRedis => {
                let url = servers
                    .redis
                    .expect("a redis-server, started for calm-redis");
                Kind::Calm(built(calm_redis_builder(base, url)))
            }
            Variant::CalmSvc => Kind::CalmSvc(built(calm_builder(base)), uri(base)),
            Variant::CalmNoRateLimit => Kind::Calm(built(Client::builder(base))),
            Variant::CalmNoRetry => Kind::Calm(built(calm_builder(base).no_retries())),
            Variant::CalmBare => Kind::Calm(built(Client::builder(base).no_retries())),
            Variant::Layers => Kind::Layers(layers(base), uri(base)),
            Variant::CalmOverRaw => Kind::Calm(
                calm_builder(base)
                    .build_with(raw_client::<Body>())
                    .expect("calm client"),
            ),
        };
        Target { variant, kind }
    }

    /// Sends one request and reads the whole response.
    async fn send(&mut self) -> Result<(), BoxError> {
        match &mut self.kind {
            Kind::Raw(client, uri) => {
                let response = client.request(get(uri)).await?;
                check(response.status())?;
                response.into_body().collect().await?;
            }
            Kind::Transport(transport, uri) => {
                let response = transport.ready().await?.call(get(uri)).await?;
                check(response.status())?;
                response.into_body().collect().await?;
            }
            Kind::Tower(stack, uri) => {
                let response = stack.ready().await?.call(get(uri)).await?;
                check(response.status())?;
                response.into_body().collect().await?;
            }
            Kind::TowerFull(stack, path) => {
                let response = stack.ready().await?.call(get(path)).await?;
                check(response.status())?;
                response.into_body().collect().await?;
            }
            Kind::Layers(stack, uri) => {
                let response = stack.ready().await?.call(get(uri)).await?;
                check(response.status())?;
                response.into_body().collect().await?;
            }
            Kind::Calm(client) => {
                let response = client.get(PATH).send().await?;
                check(response.status())?;
                response.bytes().await?;
            }
            Kind::CalmSvc(client, uri) => {
                let request = Request::get(uri.clone())
                    .body(Body::empty())
                    .expect("a valid request");
                let response = client.clone().oneshot(request).await?;
                check(response.status())?;
                response.into_body().collect().await?;
            }
        }
        Ok(())
    }
}

fn get(uri: &Uri) -> Request<Full<Bytes>> {
    Request::get(uri.clone())
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

fn check(status: StatusCode) -> Result<(), BoxError> {
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("unexpected status {status}").into())
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sequential,
    Concurrent,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Sequential => "sequential",
            Mode::Concurrent => "concurrent",
        })
    }
}

/// One measurement: `latencies.len()` requests in `elapsed`.
#[derive(Debug, Default)]
struct Run {
    elapsed: Duration,
    /// Nanoseconds, one per request.
    latencies: Vec<u64>,
    /// CPU time of the client and the server runtime's threads during the run, if known.
    cpu: Option<(Duration, Duration)>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Client and server CPU time per request, in microseconds.
    fn cpu_per_request(&self) -> Option<(f64, f64)> {
        let n = self.latencies.len().max(1) as f64;
        self.cpu.map(|(client, server)| {
            (
                client.as_secs_f64() * 1e6 / n,
                server.as_secs_f64() * 1e6 / n,
            )
        })
    }
}

/// The CPU time so far of this process's threads whose name starts with `prefix` (Linux:
/// `/proc/self/task/*/schedstat`, in nanoseconds; `None` elsewhere).
///
/// NOTE: on loopback the kernel does much of the receiving side's TCP work in the sender's
/// thread, so this splits the work between client and server roughly, but equally for every
/// variant; it is far less sensitive to other load on the machine than wall time.
fn cpu_time(prefix: &str) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn cpu_times() -> Option<(Duration, Duration)> {
    Some((cpu_time(CLIENT_THREADS)?, cpu_time(SERVER_THREADS)?))
}

/// Sends `count` requests through `target`, `in_flight` at a time: that many tasks take
/// requests from one counter until it runs out, so all stay busy to the end.
async fn drive(target: &Target, count: usize, in_flight: usize, dispatch: &Dispatch) -> Run {
    async fn worker(mut target: Target, left: Arc<AtomicUsize>, expected: usize) -> Vec<u64> {
        let mut latencies = Vec::with_capacity(expected);
        while left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            let start = now();
            if let Err(error) = target.send().await {
                panic!("{}: request failed: {error}", target.variant);
            }
            latencies.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        latencies
    }

    let left = Arc::new(AtomicUsize::new(count));
    let start = now();
    let latencies = if in_flight <= 1 {
        worker(target.clone(), left, count)
            .with_subscriber(dispatch.clone())
            .await
    } else {
        // NOTE: room for twice a fair share, so no task reallocates while measuring.
        let expected = count / in_flight * 2 + 16;
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let worker = worker(target.clone(), Arc::clone(&left), expected);
                tokio::spawn(worker.with_subscriber(dispatch.clone()))
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for task in tasks {
            all.extend(task.await.expect("a sending task panicked"));
        }
        all
    };
    Run {
        elapsed: start.elapsed(),
        latencies,
        cpu: None,
    }
}

/// The median and 99th percentile (nearest rank) of latencies in nanoseconds, in microseconds.
fn p50_p99(latencies: &[u64]) -> (f64, f64) {
    if latencies.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |p: f64| {
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / 1e3
    };
    (at(0.50), at(0.99))
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Every run, by mode and variant index.
struct Results {
    variants: Vec<Variant>,
    /// `[mode][variant] -> runs`, one per round.
    runs: [Vec<Vec<Run>>; 2],
}

impl Results {
    fn new(config: &Config) -> Results {
        let empty = || config.variants.iter().map(|_| Vec::new()).collect();
        Results {
            variants: config.variants.clone(),
            runs: [empty(), empty()],
        }
    }

    fn add(&mut self, mode: Mode, variant: usize, run: Run) {
        self.runs[mode as usize][variant].push(run);
    }

    fn print(&self, config: &Config) {
        for mode in [Mode::Sequential, Mode::Concurrent] {
            let runs = &self.runs[mode as usize];
            let in_flight = match mode {
                Mode::Sequential => 1,
                Mode::Concurrent => config.in_flight,
            };
            println!(
                "{mode}, {in_flight} in flight, {} rounds (req/s and cpu/req: median of rounds; \
                 ratio: median of per-round req/s ratios to {})",
                config.rounds, self.variants[0]
            );
            println!(
                "  {:<14} {:>9} {:>19} {:>9} {:>9} {:>8} {:>14} {:>14}",
                "variant",
                "req/s",
                "[min-max]",
                "p50 µs",
                "p99 µs",
                "ratio",
                "client cpu/req",
                "server cpu/req"
            );
            for (index, variant) in self.variants.iter().enumerate() {
                let mut rates: Vec<f64> = runs[index].iter().map(Run::per_second).collect();
                let (min, max) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
                    (lo.min(r), hi.max(r))
                });
                let latencies: Vec<u64> = runs[index]
                    .iter()
                    .flat_map(|run| run.latencies.iter().copied())
                    .collect();
                let (p50, p99) = p50_p99(&latencies);
                let mut ratios: Vec<f64> = runs[index]
                    .iter()
                    .zip(&runs[0])
                    .map(|(run, reference)| run.per_second() / reference.per_second())
                    .collect();
                let mut client_cpu: Vec<f64> = runs[index]
                    .iter()
                    .filter_map(|run| run.cpu_per_request().map(|(client, _)| client))
                    .collect();
                let mut server_cpu: Vec<f64> = runs[index]
                    .iter()
                    .filter_map(|run| run.cpu_per_request().map(|(_, server)| server))
                    .collect();
                println!(
                    "  {:<14} {:>9.0} {:>19} {:>9.1} {:>9.1} {:>7.1}% {:>11.1} µs {:>11.1} µs",
                    variant.to_string(),
                    median(&mut rates),
                    format!("[{min:.0}-{max:.0}]"),
                    p50,
                    p99,
                    median(&mut ratios) * 100.0,
                    median(&mut client_cpu),
                    median(&mut server_cpu),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Debug)]
struct Config {
    sequential: usize,
    concurrent: usize,
    in_flight: usize,
    warmup: usize,
    rounds: usize,
    variants: Vec<Variant>,
    client_threads: usize,
    server_threads: usize,
}

impl Config {
    fn from_env_and_args() -> Config {
        // NOTE: `cargo bench` passes `--bench`; without it (`cargo test --benches`) the bench
        // only checks that every variant works, with tiny counts, like criterion's test mode.
        let benching = env::args().any(|arg| arg == "--bench");
        let (sequential, concurrent, warmup, rounds) = if benching {
            (10_000, 40_000, 1_000, 6)
        } else {
            (200, 1_000, 50, 1)
        };
        let mut config = Config {
            sequential: from_env("CALM_BENCH_SEQUENTIAL", sequential),
            concurrent: from_env("CALM_BENCH_CONCURRENT", concurrent),
            in_flight: from_env("CALM_BENCH_IN_FLIGHT", 32),
            warmup: from_env("CALM_BENCH_WARMUP", warmup),
            rounds: from_env("CALM_BENCH_ROUNDS", rounds),
            variants: env::var("CALM_BENCH_VARIANTS")
                .map(|list| parse_variants(&list))
                .unwrap_or_else(|_| Variant::defaults()),
            client_threads: from_env("CALM_BENCH_CLIENT_THREADS", 1),
            server_threads: from_env("CALM_BENCH_SERVER_THREADS", 1),
        };
        let mut args = env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .unwrap_or_else(|| panic!("{name} needs a value"))
            };
            match arg.as_str() {
                "--sequential" => config.sequential = parse(&arg, &value(&arg)),
                "--concurrent" => config.concurrent = parse(&arg, &value(&arg)),
                "--in-flight" => config.in_flight = parse(&arg, &value(&arg)),
                "--warmup" => config.warmup = parse(&arg, &value(&arg)),
                "--rounds" => config.rounds = parse(&arg, &value(&arg)),
                "--variants" => config.variants = parse_variants(&value(&arg)),
                "--client-threads" => config.client_threads = parse(&arg, &value(&arg)),
                "--server-threads" => config.server_threads = parse(&arg, &value(&arg)),
                "--bench" => {}
                // NOTE: in test mode the arguments are the test harness's (`--nocapture`, …).
                _ if !benching => {}
                other => {
                    panic!("unknown argument {other:?}; see the header of benches/loopback.rs")
                }
            }
        }
        assert!(!config.variants.is_empty(), "no variants to run");
        assert!(
            config.in_flight > 0 && config.rounds > 0,
            "zero in-flight or rounds"
        );
        config.client_threads = config.client_threads.max(1);
        config.server_threads = config.server_threads.max(1);
        config
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variants: Vec<String> = self.variants.iter().map(Variant::to_string).collect();
        write!(
            f,
            "loopback: {} rounds of [{}]; {} sequential and {} at {} in flight per round, \
             after {} warm-up requests each",
            self.rounds,
            variants.join(", "),
            self.sequential,
            self.concurrent,
            self.in_flight,
            self.warmup
        )
    }
}

fn from_env<T: FromStr>(name: &str, default: T) -> T {
    match env::var(name) {
        Ok(value) => parse(name, &value),
        Err(_) => default,
    }
}

fn parse<T: FromStr>(name: &str, value: &str) -> T {
    value
        .trim()
        .replace('_', "")
        .parse()
        .unwrap_or_else(|_| panic!("{name}: cannot parse {value:?}"))
}

fn parse_variants(list: &str) -> Vec<Variant> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|e: String| panic!("{e}")))
        .collect()
}
