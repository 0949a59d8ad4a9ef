//! [`Stack`]: the layers below the session, type-erased, sending each request through a copy
//! of its own.

use crate::Body;
use calm_retry::future::ResponseFuture;
use calm_retry::Retry;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
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
    pub(crate) fn new<S>(layers: Retry<S>) -> Stack
    where
        S: Service<Request<Body>, Response = Response<Body>>,
        S::Error: Into<BoxError>,
        S: Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        Stack {
            send: Arc::new(move |request| {
                Box::pin(OneRequest::Ready {
                    layers: Some(layers.clone()),
                    request: Some(request),
                })
            }),
        }
    }

    /// Sends `request` through a copy of the layers: first their readiness, then the call.
    pub(crate) fn send(&self, request: Request<Body>) -> Sending {
        (self.send)(request)
    }
}

pin_project! {
    /// One request through its copy of the layers.
    // NOTE: an enum, so the copy of the layers and the future they make share the box's
    // room. The copy is consumed by the call (`Retry::call_owned`): the retry layer keeps
    // what is below it for the retries without cloning it.
    #[project = OneRequestProj]
    enum OneRequest<S, F> {
        Ready { layers: Option<Retry<S>>, request: Option<Request<Body>> },
        Calling { #[pin] future: F },
    }
}

// NOTE: the errors are boxed here rather than by a `MapErr` layer, whose future would wrap
// every request's and move every response once more.
impl<S> Future for OneRequest<S, ResponseFuture<S, Body, Body>>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                OneRequestProj::Ready { layers, request } => {
                    let ready = layers.as_mut().expect("a request is sent once");
                    ready!(ready.poll_ready(cx))?;
                    let layers = layers.take().expect("a request is sent once");
                    let request = request.take().expect("a request is sent once");
                    let future = layers.call_owned(request);
                    self.set(OneRequest::Calling { future });
                }
                OneRequestProj::Calling { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}
