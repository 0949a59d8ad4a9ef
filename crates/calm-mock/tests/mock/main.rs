//! Integration tests of calm-mock through hyper-util's legacy client, on real time.
//!
//! They assert what arrived and what was answered, never durations.
#![allow(missing_docs)]

mod encoding;
mod faults;
mod quota;
mod script;
mod support;
mod tls;
