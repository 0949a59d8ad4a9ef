use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower_test::mock;

pub(crate) type Handle = mock::Handle<Request<String>, Response<()>>;

pub(crate) fn n(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

pub(crate) fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn req(name: impl Into<String>) -> Request<String> {
    Request::new(name.into())
}

/// What reached the inner service: when (since the server started) and the request body.
#[derive(Clone, Default)]
pub(crate) struct Arrivals(Arc<Mutex<Vec<(Duration, String)>>>);

impl Arrivals {
    pub(crate) fn times(&self) -> Vec<Duration> {
        self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, n)| n.clone())
            .collect()
    }
}

/// Answers every request that reaches the mock with `respond(&request)`, recording arrivals
/// relative to now.
pub(crate) fn serve(
    mut handle: Handle,
    respond: impl Fn(&Request<String>) -> Response<()> + Send + 'static,
) -> Arrivals {
    let arrivals = Arrivals::default();
    let record = arrivals.clone();
    let start = Instant::now();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            record
                .0
                .lock()
                .unwrap()
                .push((start.elapsed(), request.body().clone()));
            send.send_response(respond(&request));
        }
    });
    arrivals
}

pub(crate) fn ok(_: &Request<String>) -> Response<()> {
    Response::new(())
}

/// Lets every runnable task run (time does not move).
pub(crate) async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}
