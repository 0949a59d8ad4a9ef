//! A loopback HTTP proxy that records what it is asked: absolute-form requests are forwarded
//! (without the proxy's own headers, as a real proxy consumes them), `CONNECT host:port`
//! opens a tunnel. Optionally it demands credentials (`407` otherwise), speaks TLS itself,
//! or routes every destination to one address, so a made-up host name reaches a mock.

use bytes::Bytes;
use calm_client::transport::{ResponseBody, Transport};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::{BoxError, ServiceExt};

/// Bound on any one exchange, so a broken proxy fails a test instead of hanging it.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// What the proxy was asked, one entry per request (a `CONNECT` included).
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    /// The request target as it arrived: absolute form, or `host:port` for `CONNECT`.
    pub(crate) target: String,
    pub(crate) headers: HeaderMap,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// Answer `407` unless `Proxy-Authorization` is exactly this.
    pub(crate) require: Option<&'static str>,
    /// Speak TLS (a self-signed certificate for `127.0.0.1`).
    pub(crate) tls: bool,
    /// Connect to this address whatever the destination.
    pub(crate) route_to: Option<SocketAddr>,
}

pub(crate) struct LoopbackProxy {
    addr: SocketAddr,
    cert: Option<Vec<u8>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for LoopbackProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct State {
    options: Options,
    seen: Arc<Mutex<Vec<Seen>>>,
    upstream: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl LoopbackProxy {
    pub(crate) async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub(crate) async fn with(options: Options) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (acceptor, cert) = if options.tls {
            let (acceptor, cert) = tls_acceptor();
            (Some(acceptor), Some(cert))
        } else {
            (None, None)
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            options,
            seen: Arc::clone(&seen),
            upstream: Client::builder(TokioExecutor::new()).build_http(),
        });
        let count = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&state);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(TokioIo::new(tcp), state).await,
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve(TokioIo::new(tls), state).await;
                            }
                        }
                    }
                });
            }
        });
        LoopbackProxy {
            addr,
            cert,
            seen,
            connections,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when it speaks TLS).
    pub(crate) fn url(&self) -> String {
        let scheme = if self.cert.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The URL with `userinfo@` in it.
    pub(crate) fn url_with(&self, userinfo: &str) -> String {
        let scheme = if self.cert.is_some() { "https" } else { "http" };
        format!("{scheme}://{userinfo}@{}", self.addr)
    }

    /// The DER of its certificate, when it speaks TLS.
    pub(crate) fn cert(&self) -> Option<Vec<u8>> {
        self.cert.clone()
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve<I>(io: I, state: Arc<State>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, Arc::clone(&state)));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades()
        .await;
}

async fn handle(
    mut req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    state.seen.lock().unwrap().push(Seen {
        method: req.method().clone(),
        target: req.uri().to_string(),
        headers: req.headers().clone(),
    });
    if let Some(expected) = state.options.require {
        let given = req.headers().get(http::header::PROXY_AUTHORIZATION);
        if given.is_none_or(|given| given != expected) {
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::PROXY_AUTHENTICATION_REQUIRED;
            res.headers_mut().insert(
                http::header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"test\""),
            );
            return Ok(res);
        }
    }
    let destination = |authority: &str| -> String {
        match state.options.route_to {
            Some(addr) => addr.to_string(),
            None => authority.to_owned(),
        }
    };

    if req.method() == Method::CONNECT {
        let authority = req.uri().authority().map(|a| a.to_string());
        let Some(authority) = authority else {
            return Ok(status(StatusCode::BAD_REQUEST));
        };
        let upstream = TcpStream::connect(destination(&authority)).await;
        let Ok(mut upstream) = upstream else {
            return Ok(status(StatusCode::BAD_GATEWAY));
        };
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(&mut req).await {
                let mut client = TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        return Ok(Response::new(Full::default()));
    }

    // An absolute-form request: forward it, without the headers meant for the proxy.
    let Some(authority) = req.uri().authority().map(|a| a.to_string()) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{}{path}", destination(&authority)).parse()?;
    for name in ["proxy-authorization", "proxy-connection", "connection"] {
        parts.headers.remove(HeaderName::from_static(name));
    }
    let forwarded = Request::from_parts(parts, Full::new(body));
    let response = tokio::time::timeout(LIMIT, state.upstream.request(forwarded)).await??;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    for name in ["connection", "transfer-encoding"] {
        parts.headers.remove(HeaderName::from_static(name));
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::default());
    *res.status_mut() = status;
    res
}

fn tls_acceptor() -> (TlsAcceptor, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), cert.to_vec())
}

/// A GET of `url` through `transport`: the response head and the whole body.
pub(crate) async fn get(
    transport: &Transport,
    url: &str,
) -> Result<(Response<()>, Bytes), BoxError> {
    let req = Request::get(url).body(Full::default())?;
    let response: Response<ResponseBody> =
        tokio::time::timeout(LIMIT, transport.clone().oneshot(req)).await??;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(LIMIT, body.collect())
        .await??
        .to_bytes();
    Ok((Response::from_parts(parts, ()), body))
}

/// A header of what the proxy saw, as text.
pub(crate) fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).map(|v| v.to_str().unwrap())
}
