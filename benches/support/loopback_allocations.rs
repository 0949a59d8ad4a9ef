//! Allocations per request over real connections: the raw hyper-util client, calm's three
//! layers over it, and `calm::Client` (its own transport, and over the raw client), each
//! sending `GET /x` to a calm-mock server on loopback and reading the whole body.
//!
//! The server runs on a runtime of its own (another thread); the client side runs on a
//! current-thread runtime on the measuring thread, so the count holds everything the client
//! does per request — the variant's layers and the hyper connection task it drives — and
//! nothing of the server. One connection, kept alive; requests one after another.

use std::num::NonZeroU32;

use bytes::Bytes;
use calm::client::SharedClientLayer;
use calm::{Body, Client, Quota, RetryPolicy};
use calm_mock::MockApi;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::raw_client::raw_client;

/// The loopback variants, in the order the bench prints them.
pub(crate) const VARIANTS: &[&str] = &[
    "loopback-raw",
    "loopback-layers",
    "loopback-client",
    "loopback-client-over-raw",
];

const PATH: &str = "/x";

fn per_second() -> Quota {
    Quota::per_second(NonZeroU32::new(10_000_000).expect("non-zero"))
}

/// The server all loopback variants talk to, on a runtime of its own.
pub(crate) struct Server {
    runtime: tokio::runtime::Runtime,
    api: Option<MockApi>,
}

impl Server {
    pub(crate) fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a server runtime");
        let api = runtime.block_on(MockApi::start());
        Server {
            runtime,
            api: Some(api),
        }
    }

    fn base(&self) -> String {
        self.api.as_ref().expect("a running server").base_url()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _guard = self.runtime.enter();
        self.api.take();
    }
}

/// Runs `warmup` requests of `variant`, then hands `measure` a closure that sends `calls`
/// more on `rt` (a current-thread runtime).
///
/// # Panics
///
/// On an unknown variant, and if a request fails or is not answered `200`.
pub(crate) fn run(
    rt: &Runtime,
    server: &Server,
    variant: &str,
    warmup: u64,
    calls: u64,
    measure: &mut dyn FnMut(&mut dyn FnMut()),
) {
    let base = server.base();
    let absolute: Uri = format!("{}{PATH}", base.trim_end_matches('/'))
        .parse()
        .expect("a valid URI");
    let path: Uri = PATH.parse().expect("a valid path");
    let _guard = rt.enter();
    let mut send: Box<dyn FnMut()> = match variant {
        "loopback-raw" => {
            let client = raw_client::<Full<Bytes>>();
            Box::new(move || rt.block_on(send_through(client.clone(), &absolute)))
        }
        "loopback-layers" => {
            let stack = ServiceBuilder::new()
                .layer(SharedClientLayer::new(base.as_str()).expect("a valid base URL"))
                .layer(calm::RetryLayer::new(RetryPolicy::default()).expect("a valid policy"))
                .layer(calm::RateLimitLayer::new(per_second()).server_hints(true))
                .service(raw_client::<Full<Bytes>>());
            Box::new(move || rt.block_on(send_through(stack.clone(), &path)))
        }
        "loopback-client" | "loopback-client-over-raw" => {
            let builder = Client::builder(base.as_str())
                .rate_limit(per_second())
                .retry(RetryPolicy::default());
            let client = match variant {
                "loopback-client" => builder.build(),
                _ => builder.build_with(raw_client::<Body>()),
            }
            .expect("a client");
            Box::new(move || {
                rt.block_on(async {
                    let response = client.get(PATH).send().await.expect("a response");
                    assert_eq!(response.status(), StatusCode::OK);
                    response.bytes().await.expect("a body");
                });
            })
        }
        other => panic!("unknown variant {other:?}; known: {}", VARIANTS.join(", ")),
    };
    for _ in 0..warmup {
        send();
    }
    measure(&mut || {
        for _ in 0..calls {
            send();
        }
    });
}

/// `ready` then `call` on `service` with a `GET` of `uri`, and the body read to its end.
async fn send_through<S, B>(mut service: S, uri: &Uri)
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let request = Request::get(uri.clone())
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.expect("a body");
}
