//! [`ProxyConnector`]: the TCP connection under TLS, straight to the origin, to a proxy, or
//! through a `CONNECT` tunnel.

use super::Proxies;
use http::uri::Scheme;
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tower::BoxError;
use tower_service::Service;

type ToProxy = HttpsConnector<HttpConnector>;

/// The TCP connector below the TLS one: straight to the origin, to a proxy that takes
/// absolute-form requests, or through a `CONNECT` tunnel.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    direct: HttpConnector,
    proxies: Option<(Arc<Proxies>, ToProxy)>,
}

impl ProxyConnector {
    /// `to_proxy` opens connections to proxies (TLS for an `https://` proxy, HTTP/1.1 only).
    pub(crate) fn new(direct: HttpConnector, proxies: Option<(Arc<Proxies>, ToProxy)>) -> Self {
        ProxyConnector { direct, proxies }
    }
}

impl fmt::Debug for ProxyConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConnector")
            .field("proxies", &self.proxies.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // NOTE: `HttpConnector` (and so the TLS connector over it) is always ready; each call
        // below uses a clone or the connector itself without waiting.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxies.as_ref().and_then(|(proxies, to_proxy)| {
            proxies
                .intercept(&dst)
                .map(|intercept| (intercept, to_proxy.clone()))
        });
        let Some((intercept, mut to_proxy)) = intercept else {
            let connecting = self.direct.call(dst);
            return Box::pin(async move {
                let tcp = connecting.await?;
                Ok(ProxyStream {
                    io: MaybeHttpsStream::Http(tcp),
                    forward: false,
                })
            });
        };
        let proxy = ProxyName::new(intercept.uri());
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(intercept.uri().clone(), to_proxy);
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let connecting = tunnel.call(dst);
            Box::pin(async move {
                let io = connecting.await.map_err(|e| proxy.error(e.into()))?;
                Ok(ProxyStream { io, forward: false })
            })
        } else {
            let connecting = to_proxy.call(intercept.uri().clone());
            Box::pin(async move {
                let io = connecting.await.map_err(|e| proxy.error(e))?;
                Ok(ProxyStream { io, forward: true })
            })
        }
    }
}

/// The proxy's `scheme://host:port`, for errors.
struct ProxyName(String);

impl ProxyName {
    fn new(uri: &Uri) -> Self {
        // NOTE: hyper-util keeps the credentials out of the intercept's URI.
        let scheme = uri.scheme_str().unwrap_or("http");
        let authority = uri.authority().map_or("", |a| a.as_str());
        ProxyName(format!("{scheme}://{authority}"))
    }

    fn error(self, source: BoxError) -> BoxError {
        Box::new(ProxyConnectError {
            proxy: self.0.into_boxed_str(),
            source,
        })
    }
}

/// A connection through a proxy failed; [`TransportError`] names the proxy from it.
#[derive(Debug)]
pub(crate) struct ProxyConnectError {
    proxy: Box<str>,
    source: BoxError,
}

impl ProxyConnectError {
    pub(crate) fn proxy(&self) -> &str {
        &self.proxy
    }
}

impl fmt::Display for ProxyConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not connect through the proxy {}", self.proxy)
    }
}

impl StdError for ProxyConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// A connection made by [`ProxyConnector`].
pub(crate) struct ProxyStream {
    io: MaybeHttpsStream<TokioIo<TcpStream>>,
    /// To a proxy that takes absolute-form requests (not a tunnel).
    forward: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        // NOTE: `proxy(true)` makes hyper-util write absolute-form request targets. The
        // connection to a proxy speaks HTTP/1.1 only (its TLS offers no ALPN), so it never
        // claims HTTP/2 here; inside a tunnel, the origin's TLS decides that.
        self.io.connected().proxy(self.forward)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
