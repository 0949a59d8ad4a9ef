//! Run with: cargo run --example axum_upstream
//!
//! An axum app whose handlers call an upstream API (calm-mock on 127.0.0.1) through a
//! `calm::Registry` kept in the app state, so every handler and every task shares one client
//! — one pool, one pace, one retry budget — per upstream base URL.
//!
//! The same app also uses calm's `RateLimitLayer` on its *server* side, as a plain tower layer
//! under `Router::layer`: requests beyond 5 per second queue for up to half a second, and
//! beyond that are refused with `429` and a `Retry-After` saying when to come back.
//!
//! The program starts the app on 127.0.0.1:0, calls it with calm — an impatient burst, then a
//! client paced to the app's quota — prints what happened, and exits (about 3 s).

use std::num::NonZeroU32;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use calm::{Backoff, Client, Quota, RateLimitLayer, Registry, RetryPolicy};
use calm_mock::{MockApi, Reply};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder};

/// What the app shares with its handlers.
#[derive(Clone)]
struct AppState {
    /// One calm client per upstream base URL, built on first use.
    upstream: Registry,
    users_api: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u32,
    name: String,
}

/// `GET /users/{id}`: the user, fetched from the upstream users API.
async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<u32>,
) -> Result<Response, (StatusCode, String)> {
    let client = state.upstream.get(&state.users_api).map_err(bad_gateway)?;
    let response = client
        .get(format!("/users/{id}"))
        .send()
        .await
        .map_err(bad_gateway)?;
    let attempts = response.retry_info().map_or(1, |info| info.attempts());
    let attempts = [("x-upstream-attempts", attempts.to_string())];
    Ok(match response.status() {
        StatusCode::OK => {
            let user: User = response.json().await.map_err(bad_gateway)?;
            (attempts, Json(user)).into_response()
        }
        StatusCode::NOT_FOUND => {
            (StatusCode::NOT_FOUND, attempts, format!("no user {id}\n")).into_response()
        }
        status => {
            let message = format!("upstream answered {status}\n");
            (StatusCode::BAD_GATEWAY, attempts, message).into_response()
        }
    })
}

fn bad_gateway(error: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_GATEWAY, format!("{error}\n"))
}

/// Turns the inbound rate limiter's refusal into `429 Too Many Requests`.
async fn shed_load(error: BoxError) -> Response {
    let error = calm::Error::from_boxed(error);
    match error.rate_limited_until() {
        Some(until) => {
            let wait = until.saturating_duration_since(tokio::time::Instant::now());
            let headers = [(RETRY_AFTER, wait.as_secs_f64().ceil().to_string())];
            (StatusCode::TOO_MANY_REQUESTS, headers, "slow down\n").into_response()
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response(),
    }
}

fn app(state: AppState) -> Router {
    let inbound =
        RateLimitLayer::new(Quota::per_second(nz(5))).max_wait(Duration::from_millis(500));
    // NOTE: server hints are off on a bare layer: the responses below are the app's own, and
    // a handler's 429 or 503 with Retry-After must not pause every inbound request.
    Router::new()
        .route("/users/{id}", get(get_user))
        .with_state(state)
        // NOTE: axum needs an infallible service; HandleErrorLayer turns the limiter's
        // error into a response. The limiter is shared by every route the layer wraps.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(shed_load))
                .layer(inbound),
        )
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    run().await
}

async fn run() -> Result<(), BoxError> {
    let users_api = MockApi::start().await;
    users_api.script(
        "/v1/users/1",
        [Reply::status(503), user_reply(1, "Ada Lovelace")],
    );
    users_api.script("/v1/users/2", [user_reply(2, "Grace Hopper")]);
    users_api.script("/v1/users/3", [Reply::status(404)]);

    let upstream = Registry::new(|builder| {
        builder
            .rate_limit(Quota::per_second(nz(20)))
            .retry(RetryPolicy::default().backoff(Backoff::exponential(Duration::from_millis(50))))
            .attempt_timeout(Duration::from_secs(5))
    });
    let state = AppState {
        upstream: upstream.clone(),
        users_api: users_api.url("/v1"),
    };

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let app_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    println!("upstream users API (calm-mock)  {}", users_api.url("/v1"));
    println!("axum app, 5 requests/s inbound  {app_url}\n");

    // Calls the way a browser or a script would: no pacing, no retries.
    let impatient = Client::builder(app_url.as_str()).no_retries().build()?;
    for id in [1, 3] {
        let response = impatient.get(format!("/users/{id}")).send().await?;
        let status = response.status();
        let attempts = header(response.headers(), "x-upstream-attempts");
        let body = response.text().await?;
        println!(
            "GET /users/{id} -> {status} {}  (upstream attempts: {attempts})",
            body.trim_end()
        );
    }

    println!("\n10 requests at once, unpaced:");
    let started = Instant::now();
    let burst = join_all((0..10).map(|_| impatient.get("/users/2").send())).await;
    let mut refused = 0;
    for response in burst {
        let response = response?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            if refused == 1 {
                let retry_after = header(response.headers(), "retry-after");
                println!("  first refusal: 429, Retry-After: {retry_after}");
            }
        }
    }
    println!(
        "  {} answered 200, {refused} refused with 429, in {:.1?}",
        10 - refused,
        started.elapsed()
    );

    println!("\n10 requests at once through a calm client paced at the app's 5 per second:");
    let polite = Client::builder(app_url.as_str())
        .rate_limit(Quota::per_second(nz(5)))
        .build()?;
    let started = Instant::now();
    let burst = join_all((0..10).map(|_| polite.get("/users/2").send())).await;
    let ok = burst
        .into_iter()
        .filter(|r| matches!(r, Ok(response) if response.status() == StatusCode::OK))
        .count();
    let stats = polite.stats();
    println!(
        "  {ok} answered 200, {} refused with 429, in {:.1?}: the client held {} of them back",
        stats.responses_429,
        started.elapsed(),
        stats.rate_limit_waits,
    );

    let upstream_client = upstream.get(&users_api.url("/v1"))?;
    let stats = upstream_client.stats();
    println!(
        "\nthe app's upstream client ({} in the registry): {} requests, {} attempts",
        upstream.len(),
        stats.requests,
        stats.attempts,
    );
    for (reason, n) in &stats.retries_by_reason {
        println!("  {n} retried after {reason}");
    }
    println!(
        "the upstream saw {} requests over {} connection(s)",
        users_api.request_count(),
        users_api.connections()
    );
    Ok(())
}

fn user_reply(id: u32, name: &str) -> Reply {
    Reply::ok()
        .header("content-type", "application/json")
        .body(format!(r#"{{"id":{id},"name":"{name}"}}"#))
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("not zero")
}

#[cfg(test)]
mod tests {
    /// The example runs to its end in CI too.
    #[tokio::test]
    async fn the_app_answers_sheds_load_and_paces_its_upstream() {
        super::run().await.unwrap();
    }
}
