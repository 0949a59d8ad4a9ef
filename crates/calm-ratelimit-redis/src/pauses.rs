//! Listens for pauses published by the other processes of a limiter.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{timeout, Instant};

use crate::backend::Inner;

/// Applies every pause published on the limiter's channel, until the limiter is dropped.
///
/// A pause published while this process is not subscribed (Redis restarting, say) is not
/// lost: the next reservation's reply carries the pause in force.
pub(crate) async fn listen(limiter: Weak<Inner>) {
    loop {
        let Some(inner) = limiter.upgrade() else {
            return;
        };
        let client = inner.target.pubsub().clone();
        let channel = inner.scripts.keys().pauses_channel.clone();
        let (limit, recheck) = (inner.timeout, inner.recheck);
        drop(inner);
        if let Ok(Ok(mut pubsub)) = timeout(limit, client.get_async_pubsub()).await {
            if let Ok(Ok(())) = timeout(limit, pubsub.subscribe(&channel)).await {
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let Some(inner) = limiter.upgrade() else {
                        return;
                    };
                    // NOTE: a payload that is not a length in microseconds is ignored.
                    if let Ok(micros) = message.get_payload::<u64>() {
                        inner.pause_learned(Instant::now() + Duration::from_micros(micros));
                    }
                }
            }
        }
        tokio::time::sleep(recheck).await;
    }
}
