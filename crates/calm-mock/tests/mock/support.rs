use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Bound on any single exchange, so a broken mock fails a test instead of hanging it.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) fn h2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<Answer, hyper_util::client::legacy::Error>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let response = tokio::time::timeout(LIMIT, client.request(req))
        .await
        .expect("the mock answered in time")?;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(LIMIT, body.collect())
        .await
        .expect("the body arrived in time")
        .expect("the body arrived whole")
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

pub(crate) async fn get<C>(client: &Client<C, Full<Bytes>>, url: &str) -> Answer
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let req = Request::get(url).body(Full::default()).unwrap();
    send(client, req).await.expect("the request succeeded")
}

pub(crate) fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name} in {:?}", answer.headers))
        .to_str()
        .unwrap()
}
