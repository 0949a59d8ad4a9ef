//! Allocations per call of each of calm's layers, the three composed, the stack one would
//! assemble from tower parts and the `Client` facade, over a no-op inner service (the
//! variants are described in `support/calls.rs`). Counted by `allocation-counter`'s global
//! allocator, on the one thread that runs every call: exact and the same on every run.
//!
//! Run with: `cargo bench -p calm --bench allocations [-- --calls N --variants LIST]`. It
//! prints, per variant, allocations and bytes allocated per call and the allocations still
//! held when the calls are over (`held`: 0 unless something is kept per call). For the same
//! counts over real connections, see the loopback bench's `allocs/req`.
//!
//! Without `--bench` (as `cargo test --benches` runs it) every variant runs a few calls, to
//! check it works.

#[path = "support/calls.rs"]
mod calls;
#[path = "support/tower_stack.rs"]
mod tower_stack;

use calls::Config;

fn main() {
    let config = Config::from_args();
    let rt = calls::runtime();
    println!(
        "{:<12} {:>12} {:>12} {:>8}",
        "variant", "allocs/call", "bytes/call", "held"
    );
    for variant in &config.variants {
        let mut counted = allocation_counter::AllocationInfo::default();
        calls::run(&rt, variant, config.warmup, config.calls, &mut |calls| {
            counted = allocation_counter::measure(calls);
        });
        let calls = config.calls.max(1) as f64;
        println!(
            "{:<12} {:>12.2} {:>12.1} {:>8}",
            variant,
            counted.count_total as f64 / calls,
            counted.bytes_total as f64 / calls,
            counted.count_current,
        );
    }
}
