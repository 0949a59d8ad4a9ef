//! [`Stack`]: the layers below the session, type-erased, sending each request through a copy
//! of its own.

use crate::Body;
use http::{Request, Response};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use tower::{BoxError, Service};

/// What sending one request through the stack comes to.
pub(crate) type Sending = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

/// Everything below the session and the request's timeout (`Retry` → `RateLimit` → … →
/// transport), behind one `Arc`.
///
/// Each request drives the readiness of its own copy of the layers, so a place in the rate
/// limiter belongs to one request and is given back if it is dropped.
//
// NOTE: rather than tower's `BoxCloneSyncService`, whose `clone` boxes the copy and whose
// `call` boxes the future (two allocations, and the whole future moved into the second), one
// box holds the copy and the future it makes, built in place.
#[derive(Clone)]
pub(crate) struct Stack {
    send: Arc<dyn Fn(Request<Body>) -> Sending + Send + Sync>,
}

impl Stack {
    pub(crate) fn new<S>(layers: S) -> Stack
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
        S: Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        Stack {
            send: Arc::new(move |request| {
                let mut layers = layers.clone();
                Box::pin(async move {
                    poll_fn(|cx| layers.poll_ready(cx)).await?;
                    layers.call(request).await
                })
            }),
        }
    }

    /// Sends `request` through a copy of the layers: first their readiness, then the call.
    pub(crate) fn send(&self, request: Request<Body>) -> Sending {
        (self.send)(request)
    }
}
