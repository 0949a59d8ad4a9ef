//! Listens for pauses published by the other processes of a limiter.

use std::sync::Weak;

use futures_util::StreamExt;
use tokio::time::{timeout, Instant};

use crate::backend::Inner;
use crate::store::PauseSeen;

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
                    // NOTE: a payload that is not a pause is ignored.
                    let payload = message.get_payload::<String>().unwrap_or_default();
                    if let Some(pause) = PauseSeen::parse(&payload) {
                        inner.pause_learned(pause, Instant::now());
                    }
                }
            }
        }
        tokio::time::sleep(recheck).await;
    }
}
