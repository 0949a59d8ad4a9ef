//! [`ResponseFuture`]: the future of [`RateLimit`](crate::RateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use http::header::HOST;
use http::uri::Authority;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::error::{BoxError, Denied, MaxWaitExceeded};
use crate::hints::OtherOrigin;
use crate::hints::WallClock;
use crate::limiter::{Bound, Waiter};
use crate::metrics::{Address, Queued};
use crate::Limiter;

/// A wait for the rate limiter this long or longer is logged at DEBUG ("waited for the rate
/// limiter"). Every wait, however short, is recorded on the current span as
/// `calm.rate_limit.wait` (seconds) when that span declares the field, as the attempt spans of
/// `calm-retry` do.
pub const LOGGED_WAIT: Duration = Duration::from_millis(100);

pin_project! {
    /// The response of the inner service, whose quota hints are read on the way out; or the
    /// [`MaxWaitExceeded`](crate::error::MaxWaitExceeded) error. Before that, the wait for the request's place, when it was
    /// not free at once (see [`RateLimit`](crate::RateLimit#readiness)).
    ///
    /// Dropping it before the place has come gives the place back.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        kind: Kind<S, Req>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req>
    where
        S: Service<Req>,
    {
        Called {
            #[pin]
            future: S::Future,
            observer: Option<Observer>,
        },
        Waiting {
            // NOTE: boxed so the common case, a place free at once, keeps the future small.
            waiting: Option<Box<Waiting<S, Req>>>,
        },
        Refused {
            error: Option<Denied>,
        },
    }
}

/// A request whose place is still to come, with the ready inner service it will go through.
pub(crate) struct Waiting<S, Req> {
    waiter: Waiter,
    inner: S,
    req: Option<Req>,
    limiter: Limiter,
    observer: Option<Observer>,
    /// True while a place is held; false while waiting for the inner service's readiness,
    /// after a place came and found it not ready.
    holding: bool,
    ask: Ask,
}

/// A request's ask for its place: its bound, when it asked, and its count in the queue.
pub(crate) struct Ask {
    pub(crate) bound: Option<Bound>,
    pub(crate) at: Instant,
    pub(crate) queued: Queued,
}

impl<S, Req> Waiting<S, Req> {
    pub(crate) fn new(
        waiter: Waiter,
        inner: S,
        req: Req,
        limiter: Limiter,
        observer: Option<Observer>,
        ask: Ask,
    ) -> Box<Self> {
        Box::new(Waiting {
            waiter,
            inner,
            req: Some(req),
            limiter,
            observer,
            holding: true,
            ask,
        })
    }
}

/// Reads hints from a response into the limiter.
#[derive(Debug)]
pub(crate) struct Observer {
    pub(crate) limiter: Limiter,
    pub(crate) max_pause: Duration,
    pub(crate) clock: WallClock,
    pub(crate) host: Host,
}

/// The host a pause is logged with: the layer's, else the request's authority or `Host`
/// header. Shown without userinfo, path or query.
#[derive(Clone, Debug)]
pub(crate) enum Host {
    Configured(Arc<str>),
    Authority(Authority),
    Header(HeaderValue),
    Unknown,
}

impl Host {
    pub(crate) fn of<B>(configured: Option<&Arc<str>>, req: &Request<B>) -> Host {
        if let Some(host) = configured {
            return Host::Configured(Arc::clone(host));
        }
        if let Some(authority) = req.uri().authority() {
            return Host::Authority(authority.clone());
        }
        match req.headers().get(HOST) {
            Some(value) => Host::Header(value.clone()),
            None => Host::Unknown,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Configured(host) => f.write_str(host),
            Host::Authority(authority) => match authority.port() {
                Some(port) => write!(f, "{}:{}", authority.host(), port),
                None => f.write_str(authority.host()),
            },
            Host::Header(value) => {
                let text = value.to_str().unwrap_or("(non-ASCII Host header)");
                f.write_str(crate::layer::bare_host(text))
            }
            Host::Unknown => f.write_str("(unknown host)"),
        }
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn called(future: S::Future, observer: Option<Observer>) -> Self {
        ResponseFuture {
            kind: Kind::Called { future, observer },
        }
    }

    pub(crate) fn waiting(waiting: Box<Waiting<S, Req>>) -> Self {
        ResponseFuture {
            kind: Kind::Waiting {
                waiting: Some(waiting),
            },
        }
    }

    pub(crate) fn refused(error: Denied) -> Self {
        ResponseFuture {
            kind: Kind::Refused { error: Some(error) },
        }
    }
}

impl<S, Req, R> Future for ResponseFuture<S, Req>
where
    S: Service<Req, Response = Response<R>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().kind.project() {
                KindProj::Called { future, observer } => {
                    let result = ready!(future.poll(cx));
                    if let (Ok(response), Some(o)) = (&result, observer.take()) {
                        if response.extensions().get::<OtherOrigin>().is_some() {
                            return Poll::Ready(result.map_err(Into::into));
                        }
                        o.limiter.observe(
                            response.status(),
                            response.headers(),
                            &o.clock,
                            o.max_pause,
                            &o.host,
                        );
                    }
                    return Poll::Ready(result.map_err(Into::into));
                }
                KindProj::Waiting { waiting } => {
                    let Some(w) = waiting.as_mut() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    if let Err(error) = ready!(w.poll_place(cx)) {
                        if let Some(refused) = error.downcast_ref::<MaxWaitExceeded>() {
                            let host = w.observer.as_ref().map_or(&Host::Unknown, |o| &o.host);
                            log_max_wait(refused, host, w.ask.queued.address());
                        }
                        return Poll::Ready(Err(error));
                    }
                    let Some(w) = waiting.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let mut w = *w;
                    record_wait(w.ask.at.elapsed(), w.ask.queued.address());
                    let Some(req) = w.req.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let future = w.inner.call(req);
                    self.as_mut().project().kind.set(Kind::Called {
                        future,
                        observer: w.observer,
                    });
                }
                KindProj::Refused { error } => match error.take() {
                    Some(error) => return Poll::Ready(Err(error.into())),
                    None => panic!("ResponseFuture polled after completion"),
                },
            }
        }
    }
}

/// Records a request's wait for its place: on the current span, in the metrics, and at DEBUG
/// when it reaches [`LOGGED_WAIT`].
fn record_wait(waited: Duration, address: &Address) {
    let seconds = waited.as_secs_f64();
    tracing::Span::current().record("calm.rate_limit.wait", seconds);
    if waited >= LOGGED_WAIT {
        tracing::debug!(
            calm.rate_limit.wait = seconds,
            "waited for the rate limiter"
        );
    }
    address.waited(waited);
}

/// Logs a refusal of the rate limiter (a `max_wait` or a fail-closed store) and counts it.
pub(crate) fn log_refusal(denied: &Denied, host: &Host, address: &Address) {
    match denied {
        Denied::MaxWait(refused) => log_max_wait(refused, host, address),
        // NOTE: DEBUG: the backend warns once per outage, not once per request.
        Denied::Unavailable(error) => tracing::debug!(
            host = %host,
            error = %error,
            "rate limiter store unavailable: request refused (the limiter fails closed)"
        ),
    }
}

/// INFO, not WARN: the caller asked for this bound and gets a typed error it can act on;
/// nothing is broken, but a request was not sent, which an operator may want to see.
fn log_max_wait(refused: &MaxWaitExceeded, host: &Host, address: &Address) {
    tracing::info!(
        host = %host,
        calm.rate_limit.wait = refused.wait().as_secs_f64(),
        max_wait = ?refused.max_wait(),
        paused = refused.is_paused(),
        "rate limiter refused a request: its place is further away than max_wait"
    );
    address.refused();
}

impl<S, Req> Waiting<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    /// Ready once the place has come *and* the inner service is ready at that instant.
    fn poll_place(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            if self.holding {
                ready!(self.waiter.poll_wait(cx))?;
                self.holding = false;
                match self.inner.poll_ready(cx) {
                    Poll::Ready(ready) => return Poll::Ready(ready.map_err(Into::into)),
                    // NOTE: the place is spent: it is in the past, so giving it back would
                    // let a later request go closer to an earlier one than the quota allows.
                    // A new place is reserved once the inner service is ready again.
                    Poll::Pending => return Poll::Pending,
                }
            }
            ready!(self.inner.poll_ready(cx)).map_err(Into::into)?;
            if self
                .waiter
                .reserve(&self.limiter, self.ask.bound, cx.waker())?
            {
                return Poll::Ready(Ok(()));
            }
            self.holding = true;
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Waiting { .. } => "waiting",
            Kind::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
