//! The reference of the loopback benches: hyper-util's legacy client with the pool and TCP
//! settings of calm's default transport (`crates/calm-client/src/transport/builder.rs`),
//! minus TLS.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub(crate) type RawClient<B> = hyper_util::client::legacy::Client<HttpConnector, B>;

pub(crate) fn raw_client<B>() -> RawClient<B>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(usize::MAX)
        .build(http)
}
