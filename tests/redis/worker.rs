//! Worker processes: the parent describes a [`Job`], spawns this test binary again with it in
//! the environment, and reads one [`Summary`] line from each child's stdout.

use std::io::Read;
use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use calm::redis::{Fallback, RedisBackend};
use calm::{Client, Quota};
use tokio::time::Instant;

const ENV_ID: &str = "CALM_REDIS_WORKER_ID";
const ENV_REDIS: &str = "CALM_REDIS_WORKER_REDIS";
const ENV_NAME: &str = "CALM_REDIS_WORKER_NAME";
const ENV_BASE: &str = "CALM_REDIS_WORKER_BASE";
const ENV_QUOTAS: &str = "CALM_REDIS_WORKER_QUOTAS";
const ENV_RUN_MS: &str = "CALM_REDIS_WORKER_RUN_MS";
const ENV_TASKS: &str = "CALM_REDIS_WORKER_TASKS";

const SUMMARY: &str = "calm-redis-worker:";
/// How long a worker may take beyond its run before the parent kills it: start-up, the last
/// request, a loaded machine.
const EXIT_SLACK: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// Every request carries its worker's id in this header.
pub(crate) const WORKER_HEADER: &str = "x-worker";

/// What every worker process does: `tasks` tasks loop `GET /` on `base_url` for `run_for`
/// through one `calm::Client` whose limiter is the Redis limiter `name` with `quotas`
/// (count per period, burst 1).
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) redis_url: String,
    pub(crate) name: String,
    pub(crate) base_url: String,
    pub(crate) quotas: Vec<(u32, Duration)>,
    pub(crate) run_for: Duration,
    pub(crate) tasks: usize,
}

/// One worker's line: its responses by status.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    pub(crate) id: usize,
    pub(crate) ok: usize,
    pub(crate) too_many: usize,
    /// Other statuses and errors (transport, limiter).
    pub(crate) failed: usize,
}

impl Job {
    /// The job this process was started for, if it is a worker.
    pub(crate) fn from_env() -> Option<(usize, Job)> {
        let id = std::env::var(ENV_ID).ok()?.parse().expect(ENV_ID);
        let var = |name| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        let quotas = var(ENV_QUOTAS)
            .split(',')
            .map(|q| {
                let (n, ms) = q.split_once('/').expect(ENV_QUOTAS);
                let ms = ms.parse().expect(ENV_QUOTAS);
                (n.parse().expect(ENV_QUOTAS), Duration::from_millis(ms))
            })
            .collect();
        let job = Job {
            redis_url: var(ENV_REDIS),
            name: var(ENV_NAME),
            base_url: var(ENV_BASE),
            quotas,
            run_for: Duration::from_millis(var(ENV_RUN_MS).parse().expect(ENV_RUN_MS)),
            tasks: var(ENV_TASKS).parse().expect(ENV_TASKS),
        };
        Some((id, job))
    }

    /// Starts `n` workers (ids `1..=n`) at once; they run until [`Workers::finish`] collects
    /// them, or are killed when dropped.
    pub(crate) fn spawn(&self, n: usize) -> Workers {
        let exe = std::env::current_exe().expect("the test binary's path");
        let quotas: Vec<String> = self
            .quotas
            .iter()
            .map(|(n, period)| format!("{n}/{}", period.as_millis()))
            .collect();
        let mut workers = Workers {
            children: Vec::new(),
            deadline: Instant::now() + self.run_for + EXIT_SLACK,
        };
        for id in 1..=n {
            let child = Command::new(&exe)
                .args(["--exact", "worker", "--nocapture", "--test-threads=1"])
                .env(ENV_ID, id.to_string())
                .env(ENV_REDIS, &self.redis_url)
                .env(ENV_NAME, &self.name)
                .env(ENV_BASE, &self.base_url)
                .env(ENV_QUOTAS, quotas.join(","))
                .env(ENV_RUN_MS, self.run_for.as_millis().to_string())
                .env(ENV_TASKS, self.tasks.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start worker {id} ({}): {e}", exe.display()));
            workers.children.push((id, child));
        }
        workers
    }

    /// The worker's side: runs the job and returns what it saw.
    pub(crate) async fn run(self, id: usize) -> Summary {
        let quotas = self.quotas.iter().map(|&(n, period)| {
            Quota::per_period(NonZeroU32::new(n).expect("a non-zero count"), period)
                .expect("a valid period")
        });
        // NOTE: fail closed, so a Redis outage shows up as failed requests instead of being
        // paced in each process alone.
        let limiter = RedisBackend::builder(&self.redis_url, &self.name)
            .quotas(quotas)
            .fallback(Fallback::FailClosed)
            .limiter()
            .expect("a valid Redis limiter");
        let client = Client::builder(&self.base_url)
            .limiter(limiter)
            .no_retries()
            .default_header(WORKER_HEADER, id.to_string())
            .build()
            .expect("a valid client");
        let until = Instant::now() + self.run_for;
        let tasks: Vec<_> = (0..self.tasks)
            .map(|_| tokio::spawn(drive(client.clone(), until)))
            .collect();
        let mut summary = Summary {
            id,
            ..Summary::default()
        };
        for task in tasks {
            let counts = task.await.expect("a worker task panicked");
            summary.ok += counts.ok;
            summary.too_many += counts.too_many;
            summary.failed += counts.failed;
        }
        summary
    }
}

async fn drive(client: Client, until: Instant) -> Summary {
    let mut counts = Summary::default();
    while Instant::now() < until {
        match client.get("/").send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await;
                match (status, body) {
                    (200, Ok(_)) => counts.ok += 1,
                    (429, Ok(_)) => counts.too_many += 1,
                    _ => counts.failed += 1,
                }
            }
            Err(error) => {
                // NOTE: the first error tells what went wrong; more would fill the pipe.
                if counts.failed == 0 {
                    eprintln!("request failed: {error}");
                }
                counts.failed += 1;
            }
        }
    }
    counts
}

impl Summary {
    pub(crate) fn line(&self) -> String {
        format!(
            "{SUMMARY} id={} ok={} 429={} failed={}",
            self.id, self.ok, self.too_many, self.failed
        )
    }

    /// Finds the summary line in a worker's stdout (libtest prints around it).
    fn parse(stdout: &str) -> Option<Summary> {
        let line = &stdout[stdout.find(SUMMARY)? + SUMMARY.len()..];
        let line = line.lines().next()?;
        let mut summary = Summary::default();
        for field in line.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            let value = value.parse().ok()?;
            match key {
                "id" => summary.id = value,
                "ok" => summary.ok = value,
                "429" => summary.too_many = value,
                "failed" => summary.failed = value,
                _ => return None,
            }
        }
        Some(summary)
    }
}

/// Running worker processes; dropping this kills those still running.
#[derive(Debug)]
pub(crate) struct Workers {
    children: Vec<(usize, Child)>,
    deadline: Instant,
}

impl Workers {
    /// Waits for every worker to exit (polling, so the mock server keeps running on this
    /// runtime) and returns their summaries, in id order.
    ///
    /// # Panics
    ///
    /// If a worker outlives its run by [`EXIT_SLACK`], fails, or prints no summary; the
    /// message holds its output.
    pub(crate) async fn finish(mut self) -> Vec<Summary> {
        let mut summaries = Vec::new();
        for (id, child) in &mut self.children {
            let status = loop {
                if let Some(status) = child.try_wait().expect("try_wait on a worker") {
                    break status;
                }
                if Instant::now() >= self.deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("worker {id} did not exit in time\n{}", output(child));
                }
                tokio::time::sleep(POLL).await;
            };
            let out = output(child);
            assert!(status.success(), "worker {id} failed: {status}\n{out}");
            let summary = Summary::parse(&out)
                .unwrap_or_else(|| panic!("worker {id} printed no summary\n{out}"));
            assert_eq!(summary.id, *id, "worker {id}'s summary names another");
            summaries.push(summary);
        }
        summaries
    }
}

/// Everything a finished worker wrote.
fn output(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if let Some(mut stderr) = child.stderr.take() {
        out.push_str("--- stderr ---\n");
        let _ = stderr.read_to_string(&mut out);
    }
    out
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            // NOTE: exited children make `kill` fail; `wait` reaps them either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
