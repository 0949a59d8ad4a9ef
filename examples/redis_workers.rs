//! Run with: cargo run --example redis_workers --features redis
//!
//! One quota, several processes. This program starts a loopback API (calm-mock) that allows 10
//! requests per second, a throwaway `redis-server`, and 3 copies of itself as workers. Each
//! worker sends requests from 2 tasks for 4 s through a `calm::Client` whose limiter keeps its
//! state in Redis, so the 3 processes share the 10/s between them instead of each spending
//! all of it: the server refuses nothing.
//!
//! Needs `redis-server` (Redis 7 or later) on `PATH`: `apt-get install redis-server`,
//! `brew install redis`. It runs on a free port without persistence and is stopped at the end.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::num::NonZeroU32;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use calm::{Client, Quota};
use calm_mock::MockApi;
use tokio::time::Instant;
use tower::BoxError;

const WORKERS: usize = 3;
const TASKS: usize = 2;
const QUOTA: u32 = 10;
const RUN_FOR: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, id, redis_url, base_url] = &args[..] {
        if flag == "--worker" {
            worker(id, redis_url, base_url).await?;
            return Ok(ExitCode::SUCCESS);
        }
    }

    let api = MockApi::builder()
        .quota(QUOTA, Duration::from_secs(1))
        .start()
        .await;
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let redis = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(child) => KillOnDrop(child),
        Err(e) => {
            eprintln!(
                "cannot start `redis-server` ({e}): this example needs Redis 7 or later on PATH \
                 (apt-get install redis-server, brew install redis)"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    wait_for_redis(port).await?;
    let redis_url = format!("redis://127.0.0.1:{port}/");

    let workers = (1..=WORKERS)
        .map(|id| {
            Command::new(std::env::current_exe()?)
                .args(["--worker", &id.to_string(), &redis_url, &api.base_url()])
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<Child>, _>>()?;
    for child in workers {
        // NOTE: waiting blocks a thread; the mock API keeps answering on the runtime's others.
        let output = tokio::task::spawn_blocking(|| child.wait_with_output()).await??;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            return Err(format!("a worker failed: {}", output.status).into());
        }
    }

    let arrivals: Vec<Instant> = api.requests().iter().map(|r| r.at).collect();
    if let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) {
        let rate = (arrivals.len() - 1) as f64 / (*last - *first).as_secs_f64();
        println!(
            "combined: {rate:.1}/s (quota {QUOTA}/s), {} × 429",
            api.count_429()
        );
    }
    drop(redis);
    Ok(ExitCode::SUCCESS)
}

/// One worker process: `TASKS` tasks share one client, and the client's limiter lives in
/// Redis, shared with every other worker.
async fn worker(id: &str, redis_url: &str, base_url: &str) -> Result<(), BoxError> {
    let quota = Quota::per_second(NonZeroU32::new(QUOTA).unwrap());
    let limiter = calm::redis::limiter(redis_url, "demo:api-key", [quota])?;
    let client = Client::builder(base_url).limiter(limiter).build()?;
    let until = Instant::now() + RUN_FOR;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut sent = 0;
                while Instant::now() < until {
                    client.get("/").send().await?.bytes().await?;
                    sent += 1;
                }
                Ok::<usize, BoxError>(sent)
            })
        })
        .collect();
    let mut sent = 0;
    for task in tasks {
        sent += task.await??;
    }
    println!("worker {id} (pid {}): {sent} requests", std::process::id());
    Ok(())
}

/// Polls until Redis answers `PING`.
async fn wait_for_redis(port: u16) -> Result<(), BoxError> {
    for _ in 0..50 {
        let pong = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).and_then(|mut redis| {
            redis.write_all(b"PING\r\n")?;
            let mut reply = [0; 7];
            redis.read_exact(&mut reply)?;
            Ok(reply == *b"+PONG\r\n")
        });
        if let Ok(true) = pong {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("redis-server on port {port} did not answer within 5 s").into())
}

/// A child process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
