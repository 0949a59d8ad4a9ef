//! Allocations per call of each of calm's layers, the three composed, the stack one would
//! assemble from tower parts and the `Client` facade, over a no-op inner service (the
//! variants are described in `support/calls.rs`); then the same over real connections to a
//! loopback server: the raw hyper-util client, calm's layers over it and `calm::Client`
//! (`loopback-*`, described in `support/loopback_allocations.rs`). Counted by
//! `allocation-counter`'s global allocator, on the one thread that runs every call: exact,
//! and the same on every run (over loopback, within a fraction of an allocation).
//!
//! Run with: `cargo bench -p calm --bench allocations [-- --calls N --variants LIST]`. It
//! prints, per variant, allocations and bytes allocated per call and the allocations still
//! held when the calls are over (`held`: 0 unless something is kept per call; over loopback,
//! what the connection pool keeps).
//!
//! Without `--bench` (as `cargo test --benches` runs it) every variant runs a few calls, to
//! check it works.

#[path = "support/calls.rs"]
mod calls;
#[path = "support/loopback_allocations.rs"]
mod loopback_allocations;
#[path = "support/raw_client.rs"]
mod raw_client;
#[path = "support/tower_stack.rs"]
mod tower_stack;

use calls::Config;

/// At most this many calls of a loopback variant: the server keeps every request it gets.
const LOOPBACK_CALLS: u64 = 5_000;

fn main() {
    let mut config = Config::from_args();
    if config.variants == calls::VARIANTS {
        // NOTE: the loopback variants first: after `client-info` and `client-debug` set (and
        // dropped) a subscriber of their own, `tracing`'s cached interest has calm build its
        // spans for the no-op dispatcher, one allocation per request of a later variant.
        let loopback = loopback_allocations::VARIANTS
            .iter()
            .map(|v| (*v).to_owned());
        config.variants.splice(0..0, loopback);
    }
    let rt = calls::runtime();
    println!(
        "{:<26} {:>12} {:>12} {:>8}",
        "variant", "allocs/call", "bytes/call", "held"
    );
    // NOTE: started only when a loopback variant runs.
    let mut server = None;
    for variant in &config.variants {
        let mut counted = allocation_counter::AllocationInfo::default();
        let mut measure = |calls: &mut dyn FnMut()| {
            counted = allocation_counter::measure(calls);
        };
        let calls = if loopback_allocations::VARIANTS.contains(&variant.as_str()) {
            let server = server.get_or_insert_with(loopback_allocations::Server::start);
            let calls = config.calls.min(LOOPBACK_CALLS);
            loopback_allocations::run(&rt, server, variant, config.warmup, calls, &mut measure);
            calls
        } else {
            calls::run(&rt, variant, config.warmup, config.calls, &mut measure);
            config.calls
        };
        let calls = calls.max(1) as f64;
        println!(
            "{:<26} {:>12.2} {:>12.1} {:>8}",
            variant,
            counted.count_total as f64 / calls,
            counted.bytes_total as f64 / calls,
            counted.count_current,
        );
    }
}
