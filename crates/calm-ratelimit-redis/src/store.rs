//! The Redis side: connections, the three scripts, and their replies.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisError, RedisResult, Script, ScriptInvocation};

use crate::keys::{Keys, Spacing};

/// Where the limiter's state lives.
#[derive(Clone)]
pub(crate) enum Target {
    Single(redis::Client),
    /// The cluster, and its first node, where pauses are listened for (classic pub/sub
    /// messages reach every node of a cluster).
    Cluster(Box<ClusterClient>, redis::Client),
}

/// A live connection. A [`ConnectionManager`] reconnects by itself after a dropped
/// connection; the command that met the broken connection still fails, and the caller
/// retries it once.
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(Box<ClusterConnection>),
}

impl Target {
    pub(crate) async fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(Conn::Single)
            }
            Target::Cluster(client, _) => client
                .get_async_connection()
                .await
                .map(|c| Conn::Cluster(Box::new(c))),
        }
    }

    /// The node pauses are listened for on.
    pub(crate) fn pubsub(&self) -> &redis::Client {
        match self {
            Target::Single(client) | Target::Cluster(_, client) => client,
        }
    }
}

impl Conn {
    async fn invoke<T: FromRedisValue>(&mut self, call: &ScriptInvocation<'_>) -> RedisResult<T> {
        // NOTE: `invoke_async` sends EVALSHA and, on NOSCRIPT (a restarted or failed-over
        // server has an empty script cache), loads the script and sends it again.
        let first = match self {
            Conn::Single(c) => call.invoke_async(c).await,
            Conn::Cluster(c) => call.invoke_async(&mut **c).await,
        };
        match first {
            Err(e) if is_broken_connection(&e) => match self {
                Conn::Single(c) => call.invoke_async(c).await,
                Conn::Cluster(c) => call.invoke_async(&mut **c).await,
            },
            other => other,
        }
    }

    pub(crate) async fn ping(&mut self) -> RedisResult<()> {
        let cmd = redis::cmd("PING");
        let _: String = match self {
            Conn::Single(c) => cmd.query_async(c).await?,
            Conn::Cluster(c) => cmd.query_async(&mut **c).await?,
        };
        Ok(())
    }
}

/// An error after which the same command may succeed on a new connection.
fn is_broken_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// The outcome of one request of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Reserved `wait` from the script's now; the TATs it left, one per quota.
    Reserved { wait: Duration, tats: Box<[u64]> },
    /// Nothing taken: the place was `wait` away, past the request's bound.
    Refused { wait: Duration },
}

/// A pause as Redis knows it: how long it has left, and its end in server microseconds,
/// which identifies it across processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PauseSeen {
    pub(crate) left: Duration,
    pub(crate) id: u64,
}

impl PauseSeen {
    /// Reads a published pause, `"<length>:<end>"`.
    pub(crate) fn parse(payload: &str) -> Option<PauseSeen> {
        let (left, id) = payload.split_once(':')?;
        Some(PauseSeen {
            left: Duration::from_micros(left.parse().ok()?),
            id: id.parse().ok()?,
        })
    }
}

/// The reply to one batch.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The server pause in force, if any.
    pub(crate) pause: Option<PauseSeen>,
    pub(crate) outcomes: Vec<Outcome>,
}

/// The limiter's scripts, with its keys and quotas.
pub(crate) struct Scripts {
    reserve: Script,
    release: Script,
    pause: Script,
    keys: Keys,
    spacings: Box<[Spacing]>,
}

/// `None` for "no bound" in the script's arguments.
const UNBOUNDED: i64 = -1;

impl Scripts {
    pub(crate) fn new(keys: Keys, spacings: Box<[Spacing]>) -> Scripts {
        Scripts {
            reserve: Script::new(include_str!("../scripts/reserve.lua")),
            release: Script::new(include_str!("../scripts/release.lua")),
            pause: Script::new(include_str!("../scripts/pause.lua")),
            keys,
            spacings,
        }
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Reserves a place for each bound, in order: one round trip.
    pub(crate) async fn reserve(
        &self,
        conn: &mut Conn,
        bounds: &[Option<Duration>],
    ) -> RedisResult<Reply> {
        let mut call = self.reserve.key(&self.keys.pause);
        call.key(&self.keys.quotas).arg(self.spacings.len());
        for s in self.spacings.iter() {
            call.arg(s.interval_us).arg(s.tolerance_us);
        }
        for bound in bounds {
            call.arg(bound.map_or(UNBOUNDED, |b| micros(b).min(i64::MAX as u64) as i64));
        }
        let (pause_left, pause_id, results): (u64, u64, Vec<Vec<i64>>) = conn.invoke(&call).await?;
        let quotas = self.spacings.len();
        let outcomes = results
            .into_iter()
            .map(|r| parse_outcome(&r, quotas))
            .collect::<Option<Vec<_>>>()
            .filter(|o| o.len() == bounds.len())
            .ok_or_else(|| {
                RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "reserve script: unexpected reply",
                ))
            })?;
        Ok(Reply {
            pause: (pause_left > 0).then(|| PauseSeen {
                left: Duration::from_micros(pause_left),
                id: pause_id,
            }),
            outcomes,
        })
    }

    /// Gives back cancelled reservations that nothing was reserved after; one round trip.
    /// Returns how many were given back.
    pub(crate) async fn release(&self, conn: &mut Conn, tats: &[Box<[u64]>]) -> RedisResult<u64> {
        let mut call = self.release.key(&self.keys.quotas);
        call.arg(self.spacings.len());
        for s in self.spacings.iter() {
            call.arg(s.interval_us);
        }
        let mut latest_first: Vec<&Box<[u64]>> = tats.iter().collect();
        latest_first.sort_unstable_by(|a, b| b.cmp(a));
        for reservation in latest_first {
            call.arg(&reservation[..]);
        }
        conn.invoke(&call).await
    }

    /// Pauses every process for `length` from the server's now; one round trip. Returns the
    /// pause in force afterwards: this one, or a longer one.
    pub(crate) async fn pause(&self, conn: &mut Conn, length: Duration) -> RedisResult<PauseSeen> {
        let mut call = self.pause.key(&self.keys.pause);
        call.arg(micros(length).max(1))
            .arg(&self.keys.pauses_channel);
        let (left, id): (u64, u64) = conn.invoke(&call).await?;
        Ok(PauseSeen {
            left: Duration::from_micros(left),
            id,
        })
    }
}

fn parse_outcome(r: &[i64], quotas: usize) -> Option<Outcome> {
    let (&code, rest) = r.split_first()?;
    let (&wait, tats) = rest.split_first()?;
    let wait = Duration::from_micros(u64::try_from(wait).ok()?);
    match code {
        0 => Some(Outcome::Refused { wait }),
        1 if tats.len() == quotas => Some(Outcome::Reserved {
            wait,
            tats: tats
                .iter()
                .map(|&t| u64::try_from(t).ok())
                .collect::<Option<_>>()?,
        }),
        _ => None,
    }
}

/// Whole microseconds, rounded up: a pause or a bound never shrinks.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_or_refused_whole() {
        assert_eq!(
            parse_outcome(&[1, 250, 10, 20], 2),
            Some(Outcome::Reserved {
                wait: Duration::from_micros(250),
                tats: Box::new([10, 20])
            })
        );
        assert_eq!(
            parse_outcome(&[0, 7], 2),
            Some(Outcome::Refused {
                wait: Duration::from_micros(7)
            })
        );
        assert_eq!(parse_outcome(&[1, 250, 10], 2), None);
        assert_eq!(parse_outcome(&[2, 250], 0), None);
        assert_eq!(parse_outcome(&[1, -5], 0), None);
        assert_eq!(parse_outcome(&[], 0), None);
    }

    #[test]
    fn published_pauses_are_parsed_or_ignored() {
        assert_eq!(
            PauseSeen::parse("2000000:1767225600000000"),
            Some(PauseSeen {
                left: Duration::from_secs(2),
                id: 1_767_225_600_000_000
            })
        );
        assert_eq!(PauseSeen::parse("2000000"), None);
        assert_eq!(PauseSeen::parse("-1:5"), None);
        assert_eq!(PauseSeen::parse("1:x"), None);
    }

    #[test]
    fn micros_round_up() {
        assert_eq!(micros(Duration::from_nanos(1)), 1);
        assert_eq!(micros(Duration::from_micros(3)), 3);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }
}
