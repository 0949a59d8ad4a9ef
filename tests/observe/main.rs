//! What calm shows of itself: spans after the OpenTelemetry HTTP client conventions, events at
//! deliberate levels, metrics, and readable `Debug` output.

mod capture;
#[cfg(feature = "metrics")]
mod metrics;
mod spans;
mod state;
mod support;
