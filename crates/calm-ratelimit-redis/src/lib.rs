//! One quota for many processes: a Redis backend for calm-ratelimit's [`Limiter`].
//!
//! # Overview
//!
//! A [`Limiter`] built on a [`RedisBackend`] paces every process that builds one with the
//! same Redis URL and name, as one: 8 replicas of a web app and a cron job calling the same
//! API with the same key share its 600 per minute, instead of each spending all of it. Hand
//! the limiter to calm's `ClientBuilder::limiter` or to
//! [`RateLimitLayer::from_limiter`](calm_ratelimit::RateLimitLayer::from_limiter); the rest of
//! the stack does not change.
//!
//! - **Reservations, in one round trip**: a request asks Redis for a place; one Lua script
//!   runs GCRA over every quota of the limiter at once (all or none) on the Redis server's
//!   clock (`TIME`, integer microseconds), takes the place at `now + wait`, and answers the
//!   wait. The caller sleeps that long *here*, then goes. A wait past the request's
//!   `max_wait` takes nothing and answers when it could have gone, as in one process.
//! - **A local queue in front**: callers of one process queue here, first come first
//!   served; one task per limiter carries every request that asked meanwhile in one round
//!   trip (`EVALSHA`, reloaded after `NOSCRIPT`), in order. No caller polls Redis: a waiting
//!   caller makes no round trip of its own, and sleeps once its place is known.
//! - **Shared pauses**: a pause one process learns from a server (a 429 with
//!   `Retry-After`, quota headers at zero) is written to Redis and published; every process
//!   holds its callers until it ends. A caller already holding a place inside the pause
//!   takes a new one after it (or fails, if its bound ends first).
//! - **Cluster-safe keys**: every key of a limiter carries the hash tag `{name}`:
//!   `calm:rl:{github:token-a}:pause`, `calm:rl:{github:token-a}:gcra:720000us:1`. Keys
//!   expire once their state no longer matters, at most a few periods after the last request.
//! - **Failure is a policy** ([`Fallback`]): when Redis refuses or answers slower than the
//!   [timeout](RedisBackendBuilder::timeout) (250 ms by default), requests are paced in this
//!   process with the same quotas (the default), or with quotas of your choosing, or fail at
//!   once with [`Unavailable`](calm_ratelimit::error::Unavailable). The outage is logged at
//!   WARN once, counted in [`Snapshot::store`](calm_ratelimit::Snapshot::store), and Redis is
//!   tried again every second; when it answers, the quota is shared again (INFO). No request
//!   ever waits on a dead Redis for longer than the timeout.
//! - **No clock trust**: decisions read only Redis's clock, and each process turns the wait
//!   it is told into a sleep on its own monotonic clock, counted from when the answer came,
//!   so a place is never taken early.
//!
//! # What a cancelled caller gives back
//!
//! A caller cancelled before its round trip is sent gives everything back: Redis never heard
//! of it. A caller cancelled after its place was reserved gives it back *only if nothing was
//! reserved after it*, in any process (a script checks that every quota's state is still the
//! one its reservation left); callers behind it keep their places. Otherwise its place is
//! lost: the quota runs a little below its limit, never above. (In one process the in-process
//! backend does better: every caller behind moves up.)
//!
//! # Example
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::num::NonZeroU32;
//! use calm_ratelimit::Quota;
//!
//! // Every process that runs this shares 600 per minute.
//! let limiter = calm_ratelimit_redis::limiter(
//!     "redis://127.0.0.1:6379/",
//!     "api.example.com:key-a",
//!     [Quota::per_minute(NonZeroU32::new(600).unwrap())],
//! )?;
//! limiter.acquire().await?;
//! println!("{:?}", limiter.snapshot().store);
//! # Ok(())
//! # }
//! ```
//!
//! # Requirements
//!
//! Redis 7 or later, or Valkey; a tokio runtime (the backend runs one task per limiter, and
//! one listening for pauses). Built on redis-rs with its `ConnectionManager`, which
//! reconnects after a dropped connection; the command that met the broken connection is
//! sent once more.

mod backend;
mod builder;
mod driver;
mod error;
mod keys;
mod pauses;
mod store;

pub use crate::backend::{Fallback, RedisBackend};
pub use crate::builder::{
    limiter, LimiterExt, RedisBackendBuilder, DEFAULT_KEY_PREFIX, DEFAULT_RECHECK, DEFAULT_TIMEOUT,
};
pub use crate::error::{Error, ErrorKind};

#[doc(no_inline)]
pub use calm_ratelimit::{Limiter, Quota};
