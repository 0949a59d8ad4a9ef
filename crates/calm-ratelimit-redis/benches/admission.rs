//! What one admission through the Redis limiter costs: next to a bare Redis round trip, and
//! next to the in-process limiter, against a real redis-server started for the run.
//!
//! Run with: `cargo bench -p calm-ratelimit-redis --bench admission [-- OPTIONS]`
//! (`redis-server` and `redis-cli` on `PATH`, as for the integration tests).
//!
//! # What is measured
//!
//! Every repetition measures four things, in an order rotated from one repetition to the
//! next so that none always runs first, each after a short warm-up of its own:
//!
//! - `PING`: sequential `PING`s on a redis-rs multiplexed connection, each timed: the cost
//!   of one round trip to this Redis from this runtime.
//! - `acquire`: sequential `limiter.acquire().await` on a limiter built by
//!   `RedisBackend::builder(url, name).quota(q).limiter()`, each timed: one round trip each
//!   (the reservation script, `EVALSHA`), sent by the limiter's own task.
//! - `Redis, N in flight`: N tasks (32 by default), each calling `acquire` a fixed number of
//!   times on one Redis limiter; admissions per second, and the round trips they took
//!   ([`Snapshot::store`](calm_ratelimit::Snapshot::store)): callers that ask while a round
//!   trip is under way share the next one.
//! - `in-process, N in flight`: the same with `Limiter::new(q)`, for reference.
//!
//! Around each Redis measurement the bench resets redis-server's statistics (`CONFIG
//! RESETSTAT`) and reads its own time per command from `INFO commandstats` (`server µs`):
//! what the server spends per `PING` and per `EVALSHA` of the script, apart from the trip.
//!
//! The quota (10,000,000 per second, burst as large) never makes anyone wait: what is
//! measured is the admission itself. Figures are medians over the repetitions (p50 and p99
//! are taken per repetition); a ratio is the median of the per-repetition ratios, since the
//! measurements of one repetition run within a second of each other and drift cancels.
//!
//! # Runtime
//!
//! One current-thread tokio runtime by default: every task of the bench, the limiter's own
//! task and redis-rs's connection tasks run on the main thread, and redis-server has the
//! other core of a 2-core machine to itself. A multi-thread runtime adds a wake-up of
//! another thread to most hand-offs (caller → limiter task → connection task and back),
//! which on a virtual machine costs more, and varies more, than what is measured; and its
//! workers compete with redis-server for the cores. It also batches less: a task woken by
//! another runs next on its worker, so the limiter's task often sends as soon as the first
//! caller has asked instead of after every ready caller has (about half as many admissions
//! per round trip with `--threads 1`). `--threads N` runs on a multi-thread runtime of N
//! workers instead (the measuring loops then run as a task on a worker).
//!
//! # Options
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--repetitions N` | 7 | repetitions of every measurement |
//! | `--sequential N` | 2000 | PINGs and admissions per sequential measurement |
//! | `--concurrent N` | 20000 | admissions per concurrent measurement (a multiple of `--in-flight`) |
//! | `--in-flight N` | 32 | tasks in the concurrent measurements |
//! | `--warmup N` | 200 | warm-up operations before each measurement |
//! | `--threads N` | 0 | 0: a current-thread runtime; N: a multi-thread runtime of N workers |
//!
//! Without `--bench` (as `cargo test --benches` runs it) one quick repetition only checks
//! that everything works. The defaults take about 5 s on a 2-core machine.

#[path = "../tests/support/mod.rs"]
mod support;

use std::env;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use calm_ratelimit::{Limiter, Quota};
use calm_ratelimit_redis::RedisBackend;
use redis::aio::MultiplexedConnection;
use support::RedisServer;

/// 10,000,000 per second, 10,000,000 at once.
///
/// NOTE: the scripts count whole microseconds, so in Redis this rate becomes one place per
/// µs. With the default burst of 1, the callers of one round trip would get places 1 µs
/// apart and all but the first would sleep until theirs, which tokio's timer rounds up to
/// the next millisecond: the quota would bind. A burst as large as the rate lets every
/// batch go at once. (Both could go up to `u32::MAX`: the interval stays 1 µs in Redis, and
/// 1 µs times the burst stays far below the 2^52 µs past which the builder refuses a quota
/// as `QuotaTooLarge`.)
const QUOTA: Quota = Quota::per_second(RATE).burst(RATE);
const RATE: NonZeroU32 = NonZeroU32::new(10_000_000).unwrap();
const NAME: &str = "bench:admission";

/// Wall-clock time.
///
/// NOTE: a bench measures real elapsed time, so it needs `std::time::Instant`; the ban in
/// `.clippy.toml` keeps library code on tokio's pausable clock and does not apply here.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() {
    let config = Config::from_args();
    let redis = RedisServer::start();
    let version = redis
        .command(&["INFO", "server"])
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .to_owned();
    println!("{config}");
    println!(
        "redis-server {version} on port {}; {}; {} cores available",
        redis.port(),
        match config.threads {
            0 => "current-thread runtime".to_owned(),
            n => format!("multi-thread runtime, {n} worker(s)"),
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let runtime = match config.threads {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .expect("a tokio runtime");
    let url = redis.url();
    let run = async move {
        let config = &config;
        let client = redis::Client::open(url.as_str()).expect("a valid Redis URL");
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the bench's redis-server");
        let redis_limiter = RedisBackend::builder(url, NAME)
            .quota(QUOTA)
            .limiter()
            .expect("a valid Redis limiter");
        let local_limiter = Limiter::new(QUOTA);
        let mut repetitions = Vec::with_capacity(config.repetitions);
        for index in 0..config.repetitions {
            let repetition = Repetition::run(
                config,
                index,
                connection.clone(),
                &redis_limiter,
                &local_limiter,
            )
            .await;
            repetition.print(index, config);
            repetitions.push(repetition);
        }
        let store = redis_limiter.snapshot().store.expect("a shared store");
        assert!(
            store.shared && store.outages == 0 && store.fallback_admissions == 0,
            "Redis was out of reach during the run: {store:?}"
        );
        // NOTE: only the in-process limiter's `waits` shows whether the quota bound: the
        // Redis backend counts its round trip as waiting, so every admission of it counts.
        assert_eq!(
            local_limiter.snapshot().waits,
            0,
            "the quota made callers wait: it must not bind"
        );
        repetitions
    };
    // NOTE: on a multi-thread runtime the loops run as a task on a worker: `block_on` would
    // poll them on the main thread and add a thread hop to every operation.
    let started = now();
    let repetitions = match config.threads {
        0 => runtime.block_on(run),
        _ => runtime
            .block_on(runtime.spawn(run))
            .expect("the measuring task panicked"),
    };
    let elapsed = started.elapsed();
    println!();
    print_summary(&repetitions, &config);
    println!("\nmeasured in {:.1} s", elapsed.as_secs_f64());
    runtime.shutdown_background();
    drop(redis);
}

// ---------------------------------------------------------------------------------------------
// Measuring

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measurement {
    Ping,
    Acquire,
    RedisConcurrent,
    LocalConcurrent,
}

impl Measurement {
    const ALL: [Measurement; 4] = [
        Measurement::Ping,
        Measurement::Acquire,
        Measurement::RedisConcurrent,
        Measurement::LocalConcurrent,
    ];
}

/// One repetition's figures.
#[derive(Debug, Default)]
struct Repetition {
    ping: Sequential,
    acquire: Sequential,
    redis: Throughput,
    local: Throughput,
}

#[derive(Debug, Default)]
struct Sequential {
    /// Nanoseconds, one per operation.
    latencies: Vec<u64>,
    /// What redis-server itself spent per command (`PING`, `EVALSHA`), in µs.
    server: f64,
}

#[derive(Debug, Default)]
struct Throughput {
    admissions: usize,
    elapsed: Duration,
    round_trips: u64,
    /// What redis-server itself spent per round trip (`EVALSHA`), in µs.
    server: f64,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.admissions as f64 / self.elapsed.as_secs_f64()
    }

    fn per_round_trip(&self) -> f64 {
        self.admissions as f64 / self.round_trips as f64
    }
}

impl Repetition {
    async fn run(
        config: &Config,
        index: usize,
        mut connection: MultiplexedConnection,
        redis_limiter: &Limiter,
        local_limiter: &Limiter,
    ) -> Repetition {
        let mut repetition = Repetition::default();
        let in_flight = config.in_flight;
        let (each, warmup_each) = (config.concurrent / in_flight, config.warmup / in_flight);
        for i in 0..Measurement::ALL.len() {
            match Measurement::ALL[(i + index) % Measurement::ALL.len()] {
                Measurement::Ping => {
                    pings(&mut connection, config.warmup).await;
                    reset_server_stats(&mut connection).await;
                    repetition.ping.latencies = pings(&mut connection, config.sequential).await;
                    repetition.ping.server = server_time(&mut connection, "ping").await;
                }
                Measurement::Acquire => {
                    admissions(redis_limiter, config.warmup).await;
                    reset_server_stats(&mut connection).await;
                    repetition.acquire.latencies =
                        admissions(redis_limiter, config.sequential).await;
                    repetition.acquire.server = server_time(&mut connection, "evalsha").await;
                }
                Measurement::RedisConcurrent => {
                    concurrent(redis_limiter, in_flight, warmup_each).await;
                    reset_server_stats(&mut connection).await;
                    repetition.redis = concurrent(redis_limiter, in_flight, each).await;
                    repetition.redis.server = server_time(&mut connection, "evalsha").await;
                }
                Measurement::LocalConcurrent => {
                    concurrent(local_limiter, in_flight, warmup_each).await;
                    repetition.local = concurrent(local_limiter, in_flight, each).await;
                }
            }
        }
        repetition
    }

    fn print(&self, index: usize, config: &Config) {
        let (ping, _) = p50_p99(&self.ping.latencies);
        let (acquire, _) = p50_p99(&self.acquire.latencies);
        println!(
            "repetition {}: PING p50 {ping:>6.1} µs, acquire p50 {acquire:>6.1} µs ({:.2}×); \
             {} in flight: Redis {:>7.0}/s ({:.1} per round trip), in-process {:>9.0}/s",
            index + 1,
            acquire / ping,
            config.in_flight,
            self.redis.per_second(),
            self.redis.per_round_trip(),
            self.local.per_second(),
        );
    }
}

async fn admit(limiter: &Limiter) {
    limiter
        .acquire()
        .await
        .expect("an admission (the Redis limiter fails only when told to fail closed)");
}

/// `count` PINGs, one after the other; the latency of each, in nanoseconds.
async fn pings(connection: &mut MultiplexedConnection, count: usize) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = now();
        let pong: String = redis::cmd("PING")
            .query_async(connection)
            .await
            .expect("PING");
        latencies.push(nanos(start.elapsed()));
        assert_eq!(pong, "PONG");
    }
    latencies
}

/// `count` admissions, one after the other; the latency of each, in nanoseconds.
async fn admissions(limiter: &Limiter, count: usize) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = now();
        admit(limiter).await;
        latencies.push(nanos(start.elapsed()));
    }
    latencies
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// `in_flight` tasks, each admitted `each` times; the round trips are the store's, if the
/// limiter has one.
async fn concurrent(limiter: &Limiter, in_flight: usize, each: usize) -> Throughput {
    let round_trips = || limiter.snapshot().store.map_or(0, |s| s.round_trips);
    let before = round_trips();
    let start = now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    admit(&limiter).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("an admitting task panicked");
    }
    Throughput {
        admissions: in_flight * each,
        elapsed: start.elapsed(),
        round_trips: round_trips() - before,
        server: f64::NAN,
    }
}

/// Zeroes redis-server's command statistics (`CONFIG RESETSTAT`).
async fn reset_server_stats(connection: &mut MultiplexedConnection) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(connection)
        .await
        .expect("CONFIG RESETSTAT");
}

/// The time redis-server spent per call of `command` since its statistics were reset, in µs,
/// as `INFO commandstats` reports it (`cmdstat_ping:calls=…,usec=…,usec_per_call=…`).
async fn server_time(connection: &mut MultiplexedConnection, command: &str) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|fields| {
            fields
                .split(',')
                .find_map(|field| field.strip_prefix("usec_per_call="))
        })
        .and_then(|usec| usec.parse().ok())
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// Figures

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

/// The median of `f` over the repetitions, with its minimum and maximum.
fn median_of(repetitions: &[Repetition], f: &dyn Fn(&Repetition) -> f64) -> (f64, f64, f64) {
    let mut values: Vec<f64> = repetitions.iter().map(f).collect();
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let median = if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    (median, values[0], values[values.len() - 1])
}

fn print_summary(repetitions: &[Repetition], config: &Config) {
    let median = |f: &dyn Fn(&Repetition) -> f64| median_of(repetitions, f);
    let range =
        |(_, min, max): (f64, f64, f64), digits: usize| format!("[{min:.digits$}-{max:.digits$}]");
    println!(
        "sequential, {} per repetition: median of {} repetitions [min-max] of each \
         repetition's p50 and p99, and of redis-server's own time per command",
        config.sequential, config.repetitions
    );
    println!(
        "  {:<24} {:>8} {:>15} {:>8} {:>15} {:>10}",
        "", "p50 µs", "[min-max]", "p99 µs", "[min-max]", "server µs"
    );
    let row = |name: &str, of: fn(&Repetition) -> &Sequential| {
        let p50 = median(&|r| p50_p99(&of(r).latencies).0);
        let p99 = median(&|r| p50_p99(&of(r).latencies).1);
        let server = median(&|r| of(r).server);
        println!(
            "  {name:<24} {:>8.1} {:>15} {:>8.1} {:>15} {:>10.1}",
            p50.0,
            range(p50, 1),
            p99.0,
            range(p99, 1),
            server.0,
        );
    };
    row("PING (multiplexed)", |r| &r.ping);
    row("acquire (Redis limiter)", |r| &r.acquire);
    let p50 = median(&|r| p50_p99(&r.acquire.latencies).0 / p50_p99(&r.ping.latencies).0);
    let p99 = median(&|r| p50_p99(&r.acquire.latencies).1 / p50_p99(&r.ping.latencies).1);
    println!(
        "  {:<24} {:>7.2}× {:>15} {:>7.2}× {:>15}   (goal: p50 ≤ 2×)",
        "acquire / PING",
        p50.0,
        range(p50, 2),
        p99.0,
        range(p99, 2),
    );

    println!(
        "\n{} in flight, {} admissions per repetition: median of {} repetitions [min-max]",
        config.in_flight,
        config.concurrent / config.in_flight * config.in_flight,
        config.repetitions
    );
    println!(
        "  {:<24} {:>12} {:>19} {:>11} {:>14} {:>16}",
        "", "admissions/s", "[min-max]", "round trips", "per round trip", "server µs/trip"
    );
    let rate = median(&|r| r.redis.per_second());
    println!(
        "  {:<24} {:>12.0} {:>19} {:>11.0} {:>14.1} {:>16.1}",
        "Redis limiter",
        rate.0,
        range(rate, 0),
        median(&|r| r.redis.round_trips as f64).0,
        median(&|r| r.redis.per_round_trip()).0,
        median(&|r| r.redis.server).0,
    );
    let rate = median(&|r| r.local.per_second());
    println!(
        "  {:<24} {:>12.0} {:>19}",
        "in-process limiter",
        rate.0,
        range(rate, 0)
    );
    let ratio = median(&|r| r.redis.per_second() / r.local.per_second() * 100.0);
    println!(
        "  {:<24} {:>11.2}% {:>19}",
        "Redis / in-process",
        ratio.0,
        range(ratio, 2)
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Clone, Copy, Debug)]
struct Config {
    repetitions: usize,
    sequential: usize,
    concurrent: usize,
    in_flight: usize,
    warmup: usize,
    threads: usize,
}

impl Config {
    fn from_args() -> Config {
        // NOTE: `cargo bench` passes `--bench`; without it (`cargo test --benches`) the bench
        // only checks that everything works, with tiny counts.
        let benching = env::args().any(|arg| arg == "--bench");
        let mut config = if benching {
            Config {
                repetitions: 7,
                sequential: 2_000,
                concurrent: 20_000,
                in_flight: 32,
                warmup: 200,
                threads: 0,
            }
        } else {
            Config {
                repetitions: 1,
                sequential: 20,
                concurrent: 320,
                in_flight: 32,
                warmup: 32,
                threads: 0,
            }
        };
        let mut args = env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
                parse(&arg, &value)
            };
            match arg.as_str() {
                "--repetitions" => config.repetitions = value(),
                "--sequential" => config.sequential = value(),
                "--concurrent" => config.concurrent = value(),
                "--in-flight" => config.in_flight = value(),
                "--warmup" => config.warmup = value(),
                "--threads" => config.threads = value(),
                "--bench" => {}
                // NOTE: in test mode the arguments are the test harness's (`--nocapture`, …).
                _ if !benching => {}
                other => {
                    panic!("unknown argument {other:?}; see the header of benches/admission.rs")
                }
            }
        }
        assert!(
            config.repetitions > 0 && config.sequential > 0 && config.in_flight > 0,
            "zero repetitions, sequential count or tasks in flight"
        );
        assert!(
            config.concurrent >= config.in_flight,
            "--concurrent must be at least --in-flight"
        );
        config
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "admission: {} repetitions of {} sequential PINGs, {} sequential admissions and \
             {} admissions at {} in flight (Redis and in-process), after {} warm-up \
             operations each; quota {}/s, burst {}",
            self.repetitions,
            self.sequential,
            self.sequential,
            self.concurrent / self.in_flight * self.in_flight,
            self.in_flight,
            self.warmup,
            RATE,
            QUOTA.burst_size(),
        )
    }
}

fn parse<T: FromStr>(name: &str, value: &str) -> T {
    value
        .trim()
        .replace('_', "")
        .parse()
        .unwrap_or_else(|_| panic!("{name}: cannot parse {value:?}"))
}
