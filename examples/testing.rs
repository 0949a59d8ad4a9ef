//! Run with: cargo run --example testing
//! (the same checks run as tests with: cargo test -p calm --example testing)
//!
//! How to unit-test your own API wrapper built on calm: `WeatherApi` below is the code under
//! test. Its tests build the very client configuration it uses in production, but over a
//! tower-test mock transport (`Client::builder(..).build_with(mock)`), answer each request by
//! hand, and run on paused tokio time, so they assert the retries and the pacing the wrapper
//! will see — a 1 s backoff, a 30 s `Retry-After`, a 2-per-second quota — exactly, in
//! milliseconds of real time.
//!
//! Paused time jumps ahead whenever every task is waiting on a timer, so
//! `Instant::now()` when a request reaches the mock is exactly when the client sent it, and
//! `timeout(d, server.next_request())` asserts that nothing is sent within `d`.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use calm::retry::Jitter;
use calm::{Backoff, Body, Client, ClientBuilder, Quota, RetryPolicy};
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use tokio::time::{timeout, Instant};

use tower_test::mock;

// ---------------------------------------------------------------------------------------------
// The code under test.

/// A tiny client for a weather API: what a user of calm writes.
#[derive(Clone, Debug)]
struct WeatherApi {
    client: Client,
}

#[derive(Debug, Deserialize)]
struct Forecast {
    city: String,
    celsius: f64,
}

#[derive(Debug)]
enum WeatherError {
    UnknownCity(String),
    Unavailable(StatusCode),
    Other(calm::Error),
}

impl WeatherApi {
    /// The one place the client is configured, used in production as
    /// `WeatherApi::new(WeatherApi::configure(Client::builder(url)).build()?)`, and by the
    /// tests over a mock.
    fn configure(builder: ClientBuilder) -> ClientBuilder {
        builder
            .rate_limit(Quota::per_second(NonZeroU32::new(2).expect("2")))
            .retry(
                RetryPolicy::default()
                    .max_retries(3)
                    .backoff(Backoff::exponential(Duration::from_secs(1)).jitter(Jitter::None)),
            )
    }

    fn new(client: Client) -> Self {
        WeatherApi { client }
    }

    async fn forecast(&self, city: &str) -> Result<Forecast, WeatherError> {
        let response = self.client.get(format!("/forecast/{city}")).send().await?;
        match response.status() {
            StatusCode::OK => Ok(response.json().await?),
            StatusCode::NOT_FOUND => Err(WeatherError::UnknownCity(city.to_owned())),
            status => Err(WeatherError::Unavailable(status)),
        }
    }
}

impl From<calm::Error> for WeatherError {
    fn from(error: calm::Error) -> Self {
        WeatherError::Other(error)
    }
}

impl fmt::Display for WeatherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeatherError::UnknownCity(city) => write!(f, "no forecast for {city}"),
            WeatherError::Unavailable(status) => write!(f, "weather API unavailable ({status})"),
            WeatherError::Other(error) => write!(f, "weather API call failed: {error}"),
        }
    }
}

impl std::error::Error for WeatherError {}

// ---------------------------------------------------------------------------------------------
// The checks: each one is a test below, and `main` runs them all.

type Server = mock::Handle<Request<Body>, Response<Body>>;

/// The production configuration over a mock transport; the `Client` clone reads the stats.
fn weather_api() -> (WeatherApi, Client, Server) {
    let (transport, server) = mock::pair::<Request<Body>, Response<Body>>();
    let client = WeatherApi::configure(Client::builder("https://weather.example/v1"))
        .build_with(transport)
        .expect("valid configuration");
    (WeatherApi::new(client.clone()), client, server)
}

/// Waits for the next request, answers it with `response`, and says when it arrived.
async fn answer(server: &mut Server, start: Instant, response: Response<Body>) -> Duration {
    // NOTE: bounded, so a client that never sends fails the check instead of hanging it
    // (an hour of paused time passes at once).
    let next = timeout(Duration::from_secs(3600), server.next_request()).await;
    let (request, send) = next.ok().flatten().expect("a request within the hour");
    assert!(request.uri().path().starts_with("/v1/forecast/"));
    send.send_response(response);
    start.elapsed()
}

/// Asserts that the client sends nothing within `window` of paused time.
async fn assert_quiet_for(server: &mut Server, window: Duration) {
    let early = timeout(window, server.next_request()).await;
    assert!(early.is_err(), "a request arrived within {window:?}");
}

async fn retries_a_503() -> String {
    let (api, client, mut server) = weather_api();
    let start = Instant::now();
    let call = tokio::spawn(async move { api.forecast("oslo").await });

    answer(&mut server, start, status(503)).await;
    assert_quiet_for(&mut server, Duration::from_millis(999)).await;
    let retried_at = answer(&mut server, start, forecast("oslo", 4.5)).await;

    let forecast = call.await.expect("no panic").expect("a forecast");
    assert_eq!((forecast.city.as_str(), forecast.celsius), ("oslo", 4.5));
    assert_eq!(retried_at, Duration::from_secs(1));
    assert_eq!(client.stats().attempts, 2);
    format!("503 then 200: 2 requests, the retry sent after {retried_at:?} of backoff")
}

async fn honors_retry_after() -> String {
    let (api, client, mut server) = weather_api();
    let start = Instant::now();
    let call = tokio::spawn(async move { api.forecast("lima").await });

    let busy = Response::builder()
        .status(429)
        .header("retry-after", "30")
        .body(Body::empty())
        .expect("valid response");
    answer(&mut server, start, busy).await;
    let retried_at = answer(&mut server, start, forecast("lima", 19.0)).await;

    call.await.expect("no panic").expect("a forecast");
    assert_eq!(retried_at, Duration::from_secs(30));
    let limiter = client.limiter_snapshot().expect("a rate limiter");
    assert_eq!((limiter.throttled, limiter.pauses), (1, 1));
    format!("429 with Retry-After: 30: the retry sent after {retried_at:?}, and every caller paused with it")
}

async fn gives_up_after_three_retries() -> String {
    let (api, _client, mut server) = weather_api();
    let start = Instant::now();
    let call = tokio::spawn(async move { api.forecast("oslo").await });

    let mut arrivals = Vec::new();
    for _ in 0..4 {
        arrivals.push(answer(&mut server, start, status(503)).await);
    }

    let error = call
        .await
        .expect("no panic")
        .expect_err("the API stays down");
    assert!(matches!(
        error,
        WeatherError::Unavailable(StatusCode::SERVICE_UNAVAILABLE)
    ));
    assert_eq!(arrivals, [0, 1, 3, 7].map(Duration::from_secs));
    format!(
        "503 four times: requests at {}, then \"{error}\"",
        seconds(&arrivals)
    )
}

async fn paces_requests() -> String {
    let (api, _client, mut server) = weather_api();
    let start = Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.forecast("oslo").await })
        })
        .collect();

    let first = answer(&mut server, start, forecast("oslo", 4.5)).await;
    let second = answer(&mut server, start, forecast("oslo", 4.5)).await;
    assert_quiet_for(&mut server, Duration::from_millis(499)).await;
    let third = answer(&mut server, start, forecast("oslo", 4.5)).await;

    for call in calls {
        call.await.expect("no panic").expect("a forecast");
    }
    assert_eq!(
        [first, second, third],
        [0, 500, 1000].map(Duration::from_millis)
    );
    let sent = seconds(&[first, second, third]);
    format!("3 calls at once under 2 per second: sent at {sent}")
}

fn seconds(times: &[Duration]) -> String {
    let shown: Vec<_> = times
        .iter()
        .map(|d| format!("{} s", d.as_secs_f64()))
        .collect();
    shown.join(", ")
}

fn status(code: u16) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .expect("valid response")
}

fn forecast(city: &str, celsius: f64) -> Response<Body> {
    let json = format!(r#"{{"city":"{city}","celsius":{celsius}}}"#);
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(json))
        .expect("valid response")
}

// NOTE: paused time needs the current-thread runtime and tokio's `test-util` feature. Start
// paused rather than calling `tokio::time::pause()` later: a clock paused off the timer's
// millisecond grid makes every sleep end up to 1 ms late.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let real_start = SystemTime::now();
    let paused_start = Instant::now();

    println!("WeatherApi over a tower-test mock, on paused time:");
    println!("  ok  {}", retries_a_503().await);
    println!("  ok  {}", honors_retry_after().await);
    println!("  ok  {}", gives_up_after_three_retries().await);
    println!("  ok  {}", paces_requests().await);

    let real = real_start.elapsed().unwrap_or_default();
    println!(
        "\n{:.1?} of schedule ran in {real:.1?} of real time",
        paused_start.elapsed()
    );
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn retries_a_503() {
        super::retries_a_503().await;
    }

    #[tokio::test(start_paused = true)]
    async fn honors_retry_after() {
        super::honors_retry_after().await;
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_three_retries() {
        super::gives_up_after_three_retries().await;
    }

    #[tokio::test(start_paused = true)]
    async fn paces_requests() {
        super::paces_requests().await;
    }
}
