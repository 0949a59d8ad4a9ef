//! Time per call of each of calm's layers, the three composed, the stack one would assemble
//! from tower parts and the `Client` facade, over a no-op inner service (the variants are
//! described in `support/calls.rs`).
//!
//! Run with: `cargo bench -p calm --bench per_call [-- --calls N --warmup N --variants LIST]`.
//! It prints nanoseconds per call, which move with the machine's load. For figures that do
//! not, use `benches/instructions.sh`, which runs this binary under valgrind's callgrind and
//! prints instructions per call, and the `allocations` bench, which counts allocations.
//!
//! Without `--bench` (as `cargo test --benches` runs it) every variant runs a few calls, to
//! check it works.

#[path = "support/calls.rs"]
mod calls;
#[path = "support/tower_stack.rs"]
mod tower_stack;

use calls::Config;

/// Wall-clock time.
///
/// NOTE: a bench measures real elapsed time, so it needs `std::time::Instant`; the ban in
/// `.clippy.toml` keeps library code on tokio's pausable clock and does not apply here.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Runs the measured calls. `benches/instructions.sh` counts only the instructions executed
/// inside this function (callgrind's `--toggle-collect`), so set-up, warm-up and start-up
/// never blur the figure.
#[inline(never)]
fn measured_calls(calls: &mut dyn FnMut()) {
    calls();
}

fn main() {
    let config = Config::from_args();
    let rt = calls::runtime();
    println!("{:<12} {:>10}", "variant", "ns/call");
    for variant in &config.variants {
        let mut nanos = 0;
        calls::run(&rt, variant, config.warmup, config.calls, &mut |calls| {
            let started = now();
            measured_calls(calls);
            nanos = started.elapsed().as_nanos();
        });
        println!(
            "{:<12} {:>10.0}",
            variant,
            nanos as f64 / config.calls.max(1) as f64
        );
    }
}
