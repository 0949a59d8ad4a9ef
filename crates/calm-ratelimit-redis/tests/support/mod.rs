//! Real Redis servers for the integration tests: a standalone [`RedisServer`] that can be killed
//! and restarted on the same port, and a three-node [`RedisCluster`].
//!
//! Each server runs `redis-server` from `PATH` on a free loopback port, in its own temporary
//! directory, without persistence. Dropping a server kills it and removes its directory.
#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const REDIS_SERVER: &str = "redis-server";
const REDIS_CLI: &str = "redis-cli";
const INSTALL_HINT: &str = "the Redis integration tests need a real Redis 7 \
     (`redis-server` and `redis-cli` on PATH): apt-get install -y redis-server";

const START_TIMEOUT: Duration = Duration::from_secs(5);
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_millis(500);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Fresh ports per attempt: another test may grab a free port between our probe and the bind.
const START_ATTEMPTS: usize = 3;
/// Same port per attempt: the old socket may be briefly busy after a kill.
const RESTART_ATTEMPTS: usize = 5;
const RESTART_BACKOFF: Duration = Duration::from_millis(200);

/// A `redis-server` child process: standalone, or one node of a [`RedisCluster`].
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    /// The cluster bus port, for cluster nodes only.
    bus_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`; panics if it cannot.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary working directory, removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILLs the server and reaps it. The port stays this server's: [`Self::restart`] reuses it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An already exited child makes `kill` fail; `wait` still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if running, then starts a fresh one (empty: nothing is persisted) on
    /// the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut last_error = String::new();
        for _ in 0..RESTART_ATTEMPTS {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(error) => last_error = error,
            }
            pause(RESTART_BACKOFF);
        }
        panic!("{last_error}");
    }

    /// Whether the process is alive (it may still be starting or shutting down).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Runs `redis-cli -p PORT <args>` and returns its trimmed stdout (empty if the server is
    /// down: redis-cli reports that on stderr).
    pub fn command(&self, args: &[&str]) -> String {
        let output = redis_cli(&[&["-p", &self.port.to_string()], args].concat());
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn launch(cluster: bool) -> Self {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let ports = free_ports(if cluster { 2 } else { 1 });
            let mut server = RedisServer {
                port: ports[0],
                bus_port: ports.get(1).copied(),
                dir: fresh_dir(),
                child: None,
            };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("{last_error}");
    }

    /// Spawns the process and waits until it answers; on failure it is killed, and the error
    /// carries its log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let child = self.spawn();
        let pid = child.id();
        self.child = Some(child);
        let ready = wait_until(START_TIMEOUT, || {
            !self.is_running() || answers_as(self.port, pid)
        });
        let failure = if !self.is_running() {
            "exited during startup"
        } else if !ready {
            "did not answer PING within 5 s"
        } else {
            return Ok(());
        };
        self.kill();
        Err(format!(
            "redis-server on port {} {failure}; {INSTALL_HINT}\n--- its log ---\n{}",
            self.port,
            log_tail(&self.log_path()),
        ))
    }

    fn spawn(&self) -> Child {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_path().display()));
        let stderr = log.try_clone().expect("cannot clone the log file handle");
        Command::new(REDIS_SERVER)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| missing_tool(REDIS_SERVER, &e))
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &self.dir.to_string_lossy(),
        ]
        .map(String::from)
        .into();
        if let Some(bus_port) = self.bus_port {
            // NOTE: the bus defaults to port + 10000, past 65535 for most ephemeral ports.
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-port",
                    &bus_port.to_string(),
                ]
                .map(String::from),
            );
        }
        args
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A three-master Redis cluster (no replicas) on loopback.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster nodes, joins them, and waits until every node reports
    /// `cluster_state:ok`; panics if it cannot.
    pub fn start() -> Self {
        let nodes: Vec<_> = (0..3).map(|_| RedisServer::launch(true)).collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = redis_cli(&args);
        assert!(
            output.status.success(),
            "`redis-cli --cluster create` failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        let cluster = RedisCluster { nodes };
        let ok = wait_until(CLUSTER_TIMEOUT, || cluster.is_ok());
        assert!(ok, "the cluster did not reach cluster_state:ok within 15 s");
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Runs `redis-cli -c -p P1 <args>` (following redirections) and returns its trimmed stdout.
    pub fn command(&self, args: &[&str]) -> String {
        let port = self.nodes[0].port.to_string();
        let output = redis_cli(&[&["-c", "-p", &port], args].concat());
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `DBSIZE` summed over the nodes: each node counts only its own slots.
    pub fn dbsize_total(&self) -> u64 {
        self.nodes
            .iter()
            .map(|node| {
                let size = node.command(&["DBSIZE"]);
                size.parse::<u64>()
                    .unwrap_or_else(|_| panic!("DBSIZE on port {}: {size:?}", node.port))
            })
            .sum()
    }

    fn is_ok(&self) -> bool {
        self.nodes.iter().all(|node| {
            node.command(&["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
        })
    }
}

/// `n` distinct free loopback ports. The probe listeners are held together so the ports differ,
/// then dropped so a server can bind them.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("no local address").port())
        .collect()
}

pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// A new, empty directory under the system temp dir, unique per process and call.
fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("calm-redis-{}-{n}", std::process::id()));
    // A stale directory can only be left by an earlier, crashed process with the same pid.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn redis_cli(args: &[&str]) -> Output {
    Command::new(REDIS_CLI)
        .args(["-h", "127.0.0.1"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| missing_tool(REDIS_CLI, &e))
}

/// Never skip when Redis is missing: CI (CI=true) relies on these tests failing, not silently
/// passing, when the runner lacks Redis.
fn missing_tool(tool: &str, error: &io::Error) -> ! {
    panic!("cannot run `{tool}`: {error}; {INSTALL_HINT}")
}

/// Whether the process `pid` answers on `port`: it replies `+PONG`, and `INFO server` names
/// it, not a server that took the port first.
fn answers_as(port: u16, pid: u32) -> bool {
    raw_call(port, &["PING"]).is_some_and(|reply| reply.starts_with("+PONG"))
        && raw_call(port, &["INFO", "server"])
            .is_some_and(|info| info.contains(&format!("\r\nprocess_id:{pid}\r\n")))
}

/// Sends one command over a fresh connection in RESP and returns the raw reply (simple or bulk
/// string), or `None` if nothing answers.
fn raw_call(port: u16, args: &[&str]) -> Option<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, IO_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0; 4096];
    while !reply_complete(&reply) {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(reply).ok()
}

/// Whether `reply` holds a whole simple string, error, integer, or bulk string.
fn reply_complete(reply: &[u8]) -> bool {
    let Some(line_end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    if reply[0] != b'$' {
        return true;
    }
    let len: i64 = std::str::from_utf8(&reply[1..line_end])
        .ok()
        .and_then(|len| len.parse().ok())
        .unwrap_or(-1);
    let body = usize::try_from(len).map_or(0, |len| len + 2);
    reply.len() >= line_end + 2 + body
}

fn log_tail(path: &Path) -> String {
    let mut log = String::new();
    let _ = File::open(path).and_then(|mut file| file.read_to_string(&mut log));
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Polls `done` until it holds or `timeout` passes; returns whether it held.
// NOTE: harness code runs outside tokio's clock; it waits on real processes in real time.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

// NOTE: harness code runs outside tokio's clock; it waits on real processes in real time.
#[allow(clippy::disallowed_methods)]
fn pause(duration: Duration) {
    std::thread::sleep(duration);
}
