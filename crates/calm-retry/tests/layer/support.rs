//! Shared helpers: a tower-test mock behind the retry layer, driven by a scripted "server".

use std::time::Duration;

use calm_retry::{error::RetryError, Retry, RetryInfo, RetryLayer, RetryPolicy};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::{task::JoinHandle, time::Instant};
use tower::{BoxError, ServiceExt};
use tower_test::mock;

pub(crate) type Req = Request<String>;
pub(crate) type Res = Response<String>;
pub(crate) type Handle = mock::Handle<Req, Res>;
pub(crate) type Svc = Retry<mock::Mock<Req, Res>>;

/// A retry layer over a fresh mock.
pub(crate) fn service(policy: RetryPolicy) -> (Svc, Handle) {
    let (mock, handle) = mock::pair::<Req, Res>();
    let layer = RetryLayer::new(policy).expect("valid policy");
    (tower::Layer::layer(&layer, mock), handle)
}

pub(crate) fn request(method: Method) -> Req {
    Request::builder()
        .method(method)
        .uri("/v1/items")
        .body(String::from("payload"))
        .unwrap()
}

/// Sends `req` through a clone of `svc` on a spawned task.
pub(crate) fn send(svc: &Svc, req: Req) -> JoinHandle<Result<Res, RetryError>> {
    tokio::spawn(svc.clone().oneshot(req))
}

pub(crate) fn status(code: u16) -> Res {
    let mut res = Response::new(String::from("reply"));
    *res.status_mut() = StatusCode::from_u16(code).unwrap();
    res
}

pub(crate) fn with_header(mut res: Res, name: &'static str, value: &str) -> Res {
    res.headers_mut().insert(name, value.parse().unwrap());
    res
}

/// What the scripted server saw of one request.
#[derive(Debug)]
pub(crate) struct Seen {
    pub at: Duration,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: String,
}

/// One scripted answer.
pub(crate) enum Reply {
    Response(Res),
    Error(BoxError),
}

impl From<Res> for Reply {
    fn from(res: Res) -> Self {
        Reply::Response(res)
    }
}

/// Answers the next requests with `replies`, in order, and records when each arrived
/// (relative to `t0`).
pub(crate) async fn serve(
    handle: &mut Handle,
    t0: Instant,
    replies: impl IntoIterator<Item = Reply>,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    for reply in replies {
        let (req, send) = handle.next_request().await.expect("a request");
        let (parts, body) = req.into_parts();
        seen.push(Seen {
            at: t0.elapsed(),
            method: parts.method,
            headers: parts.headers,
            body,
        });
        match reply {
            Reply::Response(res) => send.send_response(res),
            Reply::Error(err) => send.send_error(err),
        }
    }
    seen
}

/// Asserts that no further request is waiting at the mock.
pub(crate) fn assert_no_more_requests<T, U>(handle: &mut mock::Handle<T, U>) {
    assert!(
        !matches!(handle.poll_request(), std::task::Poll::Ready(Some(_))),
        "the layer sent more requests than expected"
    );
}

pub(crate) fn info(res: &Res) -> &RetryInfo {
    res.extensions()
        .get::<RetryInfo>()
        .expect("every response carries RetryInfo")
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn at(seen: &[Seen]) -> Vec<Duration> {
    seen.iter().map(|s| s.at).collect()
}
