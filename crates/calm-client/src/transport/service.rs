use super::body::{Decompress, ResponseBody};
use super::builder::{Settings, TransportBuilder};
use super::future::{HyperFuture, ResponseFuture};
use super::host::add_host;
use super::proxy::{Proxies, ProxyConnector};
use super::TransportError;
use crate::redirect::{RedirectHop, RedirectPolicy as Redirects};
use bytes::Bytes;
use http::header::PROXY_AUTHORIZATION;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use sync_wrapper::SyncFuture;
use tower::util::Either;
use tower::BoxError;
use tower_http::follow_redirect::FollowRedirect;
use tower_service::Service;

pub(crate) type Connector = HttpsConnector<ProxyConnector>;

/// The stack inside a [`Transport`]: decompression over redirects over hyper-util.
// NOTE: without redirects to follow (`max_redirects(0)`, as `calm::Client` builds it: it
// follows them itself), hyper-util's client is called straight, with no follower's copy of
// every request.
pub(crate) type Inner<B> = Decompress<Either<Following<B>, Hyper<B>>>;

/// tower-http's redirect follower, its future boxed: inline, the follower's copy of each
/// request would make the future of every request larger, redirects followed or not, and
/// every layer above moves it.
pub(crate) struct Following<B> {
    inner: FollowRedirect<Hyper<B>, Redirects>,
}

impl<B> Clone for Following<B> {
    fn clone(&self) -> Self {
        Following {
            inner: self.inner.clone(),
        }
    }
}

// NOTE: `SyncFuture` keeps the transport's future `Sync`, as tower-http's was inline.
pub(crate) type FollowingFuture =
    SyncFuture<Pin<Box<dyn Future<Output = Result<Response<Incoming>, TransportError>> + Send>>>;

impl<B> Following<B> {
    pub(crate) fn new(inner: Hyper<B>, policy: Redirects) -> Self {
        Following {
            inner: FollowRedirect::with_policy(inner, policy),
        }
    }
}

impl<B> Service<Request<B>> for Following<B>
where
    B: Body + Default + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Incoming>;
    type Error = TransportError;
    type Future = FollowingFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        SyncFuture::new(Box::pin(self.inner.call(req)))
    }
}

/// calm's default transport: hyper-util's pooled client over rustls, following redirects;
/// see the [module docs](super).
///
/// `Service<http::Request<B>>` with `Response = http::Response<`[`ResponseBody`]`>` and
/// `Error = `[`TransportError`]. Always ready (the pool opens connections as needed).
///
/// # Clone
///
/// Clones share one connection pool and one TLS configuration.
///
/// ```
/// use calm_client::transport::Transport;
///
/// # fn main() -> Result<(), calm_client::transport::TransportError> {
/// let transport: Transport = Transport::builder().build()?;
/// let other = transport.clone(); // same pool
/// # drop(other);
/// # Ok(())
/// # }
/// ```
pub struct Transport<B = Full<Bytes>> {
    inner: Inner<B>,
    // NOTE: behind an `Arc`, as only `Debug` reads them: every request's stack holds copies
    // of its transport, which stay small.
    settings: Arc<Settings>,
    proxies: Option<Arc<Proxies>>,
}

impl Transport {
    /// A builder with the [defaults](super#defaults).
    pub fn builder() -> TransportBuilder {
        TransportBuilder::new()
    }
}

impl<B> Transport<B> {
    pub(crate) fn from_parts(
        inner: Inner<B>,
        settings: Settings,
        proxies: Option<Arc<Proxies>>,
    ) -> Self {
        Transport {
            inner,
            settings: Arc::new(settings),
            proxies,
        }
    }
}

impl<B> Clone for Transport<B> {
    fn clone(&self) -> Self {
        Transport {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
            proxies: self.proxies.clone(),
        }
    }
}

impl<B> fmt::Debug for Transport<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("settings", &self.settings)
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for Transport<B>
where
    B: Body + Default + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = TransportError;
    type Future = ResponseFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ResponseFuture::new(self.inner.call(req))
    }
}

/// hyper-util's client with its errors turned into [`TransportError`]s, below
/// `FollowRedirect` so that every hop fails the same way (and gets the proxy's credentials
/// only when that hop goes through the proxy).
pub(crate) struct Hyper<B> {
    // NOTE: behind an `Arc` because every request clones the stack above it (retry keeps a
    // copy of its inner service); one counter beats the client's dozen.
    inner: Arc<HyperInner<B>>,
}

struct HyperInner<B> {
    client: Client<Connector, B>,
    proxies: Option<Arc<Proxies>>,
}

impl<B> Hyper<B> {
    pub(crate) fn new(client: Client<Connector, B>, proxies: Option<Arc<Proxies>>) -> Self {
        Hyper {
            inner: Arc::new(HyperInner { client, proxies }),
        }
    }
}

impl<B> Clone for Hyper<B> {
    fn clone(&self) -> Self {
        Hyper {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B> fmt::Debug for Hyper<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hyper").finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for Hyper<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Incoming>;
    type Error = TransportError;
    type Future = HyperFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let scheme = req.uri().scheme().cloned();
        let authority = req.uri().authority().cloned();
        let hop = req.extensions().get::<RedirectHop>().map(RedirectHop::hop);
        let proxies = self.inner.proxies.as_deref();
        if let Some(auth) = proxies.and_then(|p| p.forward_auth(req.uri())) {
            // NOTE: only on a request the connector sends to the proxy in absolute form; a
            // tunnelled (`https`) or direct one gets no credentials of the proxy from here.
            req.headers_mut().entry(PROXY_AUTHORIZATION).or_insert(auth);
        }
        add_host(&mut req);
        HyperFuture::new(self.inner.client.request(req), scheme, authority, hop)
    }
}
