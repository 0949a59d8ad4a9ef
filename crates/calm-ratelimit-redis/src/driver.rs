//! The task that talks to Redis for one limiter: one round trip at a time, each carrying
//! every request that asked meanwhile, in the order they asked.

use std::sync::{Arc, Weak};
use std::time::Duration;

use calm_ratelimit::BoxError;
use tokio::sync::Notify;
use tokio::time::{timeout, Instant};

use crate::backend::{Inner, Work};
use crate::store::{micros, Conn, PauseSeen, Reply};

/// Runs until the limiter is dropped (or its runtime shuts down; the next request starts a
/// new driver then).
pub(crate) async fn run(limiter: Weak<Inner>, notify: Arc<Notify>) {
    let mut conn: Option<Conn> = None;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // NOTE: registered before looking for work, so a request that asks while the
        // work is taken is not missed.
        notified.as_mut().enable();
        let Some(inner) = limiter.upgrade() else {
            return;
        };
        if inner.in_outage() {
            let recheck = inner.recheck;
            drop(inner);
            tokio::time::sleep(recheck).await;
            let Some(inner) = limiter.upgrade() else {
                return;
            };
            if probe(&inner, &mut conn).await {
                inner.leave_outage();
            }
            continue;
        }
        let work = inner.take_work();
        if work.is_empty() {
            drop(inner);
            notified.await;
            continue;
        }
        match round_trip(&inner, &mut conn, &work).await {
            Ok((written, reply)) => inner.apply(&work, written, reply, Instant::now()),
            Err(error) => inner.enter_outage(error),
        }
    }
}

/// Writes the pause, gives back what was cancelled, then reserves the batch, all within
/// the limiter's timeout.
async fn round_trip(
    inner: &Inner,
    conn: &mut Option<Conn>,
    work: &Work,
) -> Result<(Option<PauseSeen>, Option<Reply>), BoxError> {
    let attempt = async {
        let c = connection(inner, conn).await?;
        let mut written = None;
        if let Some(until) = work.pause {
            let length = until.saturating_duration_since(Instant::now());
            if micros(length) > 0 {
                written = Some(inner.scripts.pause(c, length).await?);
            }
        }
        if !work.releases.is_empty() {
            inner.scripts.release(c, &work.releases).await?;
        }
        if work.batch.is_empty() {
            return Ok((written, None));
        }
        let now = Instant::now();
        let bounds: Vec<Option<Duration>> = work
            .batch
            .iter()
            .map(|(_, deadline)| deadline.map(|d| d.saturating_duration_since(now)))
            .collect();
        Ok::<_, BoxError>((written, Some(inner.scripts.reserve(c, &bounds).await?)))
    };
    match timeout(inner.timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer from Redis within {:?}", inner.timeout).into()),
    }
}

async fn connection<'c>(
    inner: &Inner,
    conn: &'c mut Option<Conn>,
) -> Result<&'c mut Conn, BoxError> {
    if conn.is_none() {
        *conn = Some(inner.target.connect(inner.timeout).await?);
    }
    conn.as_mut().ok_or_else(|| "no connection".into())
}

/// Whether Redis answers a `PING` within the timeout.
async fn probe(inner: &Inner, conn: &mut Option<Conn>) -> bool {
    let attempt = async {
        connection(inner, conn).await?.ping().await?;
        Ok::<_, BoxError>(())
    };
    matches!(timeout(inner.timeout, attempt).await, Ok(Ok(())))
}
