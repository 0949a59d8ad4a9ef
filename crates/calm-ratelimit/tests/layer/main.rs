//! Tests of `RateLimitLayer` against tower-test mocks, all timing on paused tokio time.
#![allow(missing_docs)]

mod bounds;
mod cancel;
mod driving;
mod hints;
mod pacing;
mod props;
mod readiness;
mod support;
