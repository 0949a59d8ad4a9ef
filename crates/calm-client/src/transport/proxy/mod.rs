//! Proxies: which requests go through which proxy (hyper-util's
//! [`Matcher`](hyper_util::client::proxy::matcher::Matcher)), and the connector that reaches
//! an origin through one.
//!
//! The contract, stated once (the builder's docs repeat it for users):
//!
//! - Explicit settings ([`proxy`](crate::transport::TransportBuilder::proxy),
//!   [`http_proxy`](crate::transport::TransportBuilder::http_proxy),
//!   [`https_proxy`](crate::transport::TransportBuilder::https_proxy)) replace the environment whole.
//!   Otherwise, with [`proxy_from_env`](crate::transport::TransportBuilder::proxy_from_env) on, the
//!   variables are read once, by `build`: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`,
//!   `NO_PROXY` (upper case first, then lower case), as hyper-util and curl name them. An
//!   empty variable counts as unset. In a CGI program (`REQUEST_METHOD` set) none is read:
//!   there `HTTP_PROXY` may come from a request's `Proxy` header (httpoxy).
//! - Every URL is checked by `build`; a bad one is a `Config` error that names where it came
//!   from and never repeats it (it may hold a password).
//! - Proxies from the environment never serve loopback destinations (`localhost`,
//!   `*.localhost`, `127.0.0.0/8`, `::1`), as in Go's `net/http`: a machine-wide proxy is not
//!   meant for local services.
//! - An `http` origin through a proxy: the request goes to the proxy in absolute form, with
//!   the proxy's credentials in `Proxy-Authorization` (added by the transport below the
//!   redirect follower, so per hop, only for hops that go through the proxy). An `https`
//!   origin: a `CONNECT` tunnel, whose request alone carries the credentials; TLS to the
//!   origin runs inside it.

mod config;
mod connector;

pub(crate) use self::config::{Proxies, ProxyConfig};
pub(crate) use self::connector::{ProxyConnectError, ProxyConnector};
