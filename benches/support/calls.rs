//! The variants of the per-call benches (`per_call`, `allocations`): calm's layers alone, the
//! three composed, the stack one would assemble from tower parts and the `Client` facade, each
//! over a no-op inner service, so only the middleware is measured.
//!
//! | variant | stack | request URI |
//! |---|---|---|
//! | `bare` | the no-op alone | absolute |
//! | `shared` | `SharedClientLayer` (base URL, one default header) | path |
//! | `retry` | `RetryLayer` with `RetryPolicy::default()` | absolute |
//! | `ratelimit` | `RateLimitLayer`, server hints on | absolute |
//! | `layers` | the three: `SharedClientLayer` → `RetryLayer` → `RateLimitLayer` | path |
//! | `tower` | tower `Retry` (cloning the request) → governor → `ConcurrencyLimit` | absolute |
//! | `tower-full` | tower-http `SetRequestHeader` → base-URL rewrite → `tower` | path |
//! | `client` | `calm::Client` (rate limit, default retries) through `Service::call` | path |
//! | `client-send` | the same `Client`: `client.get("/x").send()`, body read to its end | path |
//! | `client-info`, `client-debug` | `client` with a `tracing-subscriber` registry recording calm's spans at INFO (request spans) or DEBUG (attempt spans too) | path |
//!
//! The inner service answers `200` with an empty body from a ready future. Every call is
//! `ready().await` then `call(request).await` on the same service value, with a request made
//! from a pre-parsed `Uri`; the response is dropped. The rate limiters allow 10,000,000
//! requests/s, so they never make a call wait; nothing fails, so nothing is retried. All calls
//! run one after another on a current-thread tokio runtime.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::num::NonZeroU32;

use bytes::Bytes;
use calm::client::SharedClientLayer;
use calm::{Client, Quota, RateLimitLayer, RetryLayer, RetryPolicy};
use http::{Request, Response, Uri};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

use crate::tower_stack::{tower_full_stack, tower_stack};

const BASE: &str = "http://api.test/v1/";
const ABSOLUTE: &str = "http://api.test/v1/x";
const PATH: &str = "/x";
/// The rate of every limiter: far above what the loop can reach.
const PER_SECOND: u32 = 10_000_000;

/// Every variant, in the order the benches print them.
pub(crate) const VARIANTS: &[&str] = &[
    "bare",
    "shared",
    "retry",
    "ratelimit",
    "layers",
    "tower",
    "tower-full",
    "client",
    "client-send",
    "client-info",
    "client-debug",
];

/// Runs `warmup` calls of `variant`, then hands `measure` a closure that runs `calls` more.
///
/// # Panics
///
/// On an unknown variant, and if a call fails.
pub(crate) fn run(
    rt: &Runtime,
    variant: &str,
    warmup: u64,
    calls: u64,
    measure: &mut dyn FnMut(&mut dyn FnMut()),
) {
    let absolute: Uri = ABSOLUTE.parse().expect("a valid URI");
    let path: Uri = PATH.parse().expect("a valid URI");
    let base: Uri = BASE.parse().expect("a valid URI");
    let no_op = service_fn(no_op::<Full<Bytes>>);
    let calls = Calls {
        rt,
        warmup,
        calls,
        measure,
    };
    // NOTE: services that pace with tokio's clock need the runtime's context when made.
    let _guard = rt.enter();
    match variant {
        "bare" => calls.drive::<_, Full<Bytes>>(no_op, &absolute),
        "shared" => calls.drive::<_, Full<Bytes>>(shared_layer().layer(no_op), &path),
        "retry" => calls.drive::<_, Full<Bytes>>(retry_layer().layer(no_op), &absolute),
        "ratelimit" => calls.drive::<_, Full<Bytes>>(rate_limit_layer().layer(no_op), &absolute),
        "layers" => {
            let stack = ServiceBuilder::new()
                .layer(shared_layer())
                .layer(retry_layer())
                .layer(rate_limit_layer())
                .service(no_op);
            calls.drive::<_, Full<Bytes>>(stack, &path);
        }
        "tower" => calls.drive::<_, Full<Bytes>>(tower_stack(no_op, per_second()), &absolute),
        "tower-full" => {
            let stack = tower_full_stack(no_op, per_second(), &base);
            calls.drive::<_, Full<Bytes>>(stack, &path);
        }
        "client" => calls.drive::<_, calm::Body>(client(), &path),
        "client-send" => calls.send(&client()),
        "client-info" | "client-debug" => {
            let level = match variant {
                "client-info" => LevelFilter::INFO,
                _ => LevelFilter::DEBUG,
            };
            let subscriber = tracing_subscriber::registry().with(level);
            let _default = tracing::subscriber::set_default(subscriber);
            calls.drive::<_, calm::Body>(client(), &path);
        }
        other => panic!("unknown variant {other:?}; known: {}", VARIANTS.join(", ")),
    }
}

fn no_op<B>(_request: Request<B>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    ready(Ok(Response::new(Full::new(Bytes::new()))))
}

fn per_second() -> NonZeroU32 {
    NonZeroU32::new(PER_SECOND).expect("non-zero")
}

fn shared_layer() -> SharedClientLayer {
    SharedClientLayer::builder(BASE)
        .user_agent("bench/0.1")
        .build()
        .expect("a valid base URL")
}

fn retry_layer() -> RetryLayer {
    RetryLayer::new(RetryPolicy::default()).expect("a valid policy")
}

fn rate_limit_layer() -> RateLimitLayer {
    RateLimitLayer::new(Quota::per_second(per_second())).server_hints(true)
}

fn client() -> Client {
    Client::builder(BASE)
        .user_agent("bench/0.1")
        .rate_limit(Quota::per_second(per_second()))
        .build_with(service_fn(no_op::<calm::Body>))
        .expect("a valid client")
}

/// How many calls to make, and what to measure them with.
struct Calls<'a> {
    rt: &'a Runtime,
    warmup: u64,
    calls: u64,
    measure: &'a mut dyn FnMut(&mut dyn FnMut()),
}

impl Calls<'_> {
    /// `ready` then `call` on `service`, with a `GET` of `uri`.
    fn drive<S, B>(self, mut service: S, uri: &Uri)
    where
        S: Service<Request<B>>,
        S::Error: std::fmt::Debug,
        B: From<Bytes>,
    {
        let mut one = async || {
            let request = Request::get(uri.clone())
                .body(B::from(Bytes::new()))
                .expect("a valid request");
            let ready = service.ready().await.expect("always ready");
            black_box(ready.call(request).await.expect("a response"));
        };
        self.repeat(async || one().await);
    }

    /// `client.get(PATH).send()`, and the body read to its end.
    fn send(self, client: &Client) {
        self.repeat(async || {
            let response = client.get(PATH).send().await.expect("a response");
            black_box(response.bytes().await.expect("a body"));
        });
    }

    fn repeat(self, mut one: impl AsyncFnMut()) {
        let rt = self.rt;
        rt.block_on(async {
            for _ in 0..self.warmup {
                one().await;
            }
        });
        let calls = self.calls;
        (self.measure)(&mut || {
            rt.block_on(async {
                for _ in 0..calls {
                    one().await;
                }
            });
        });
    }
}

/// The options both benches take: `--calls N`, `--warmup N`, `--variants LIST`.
pub(crate) struct Config {
    pub(crate) calls: u64,
    pub(crate) warmup: u64,
    pub(crate) variants: Vec<String>,
}

impl Config {
    /// Reads the options; without `--bench` (as `cargo test --benches` runs a bench) the
    /// defaults shrink to a few calls, which only check that every variant works.
    pub(crate) fn from_args() -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let benching = args.iter().any(|arg| arg == "--bench");
        let mut config = Config {
            calls: if benching { 20_000 } else { 20 },
            warmup: if benching { 200 } else { 2 },
            variants: VARIANTS.iter().map(|v| (*v).to_owned()).collect(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--calls" => config.calls = value().parse().expect("--calls N"),
                "--warmup" => config.warmup = value().parse().expect("--warmup N"),
                "--variants" => {
                    config.variants = value().split(',').map(str::to_owned).collect();
                }
                // NOTE: cargo passes `--bench`; a libtest filter or flag is ignored.
                _ => {}
            }
        }
        config
    }
}

/// A current-thread runtime with time, on which every call runs.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
