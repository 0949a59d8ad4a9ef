//! Tests of the `calm` facade and of the whole stack.
//!
//! The modules at the top level drive [`calm::Client`] over in-process backends (a tower-test
//! mock or [`support::Backend`]) on paused tokio time, so they may assert exact instants. The
//! `loopback` modules drive the real transport against a calm-mock server on real time, and
//! assert counts, contents and causal order only, never durations.
#![allow(missing_docs)]

mod support;

mod body;
mod build;
mod contract;
mod errors;
mod limits;
mod loopback;
mod order;
mod policy;
mod readiness;
mod registry;
mod stats;
mod tower_compat;
