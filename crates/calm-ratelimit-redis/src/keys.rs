//! The names every process of one limiter shares in Redis.

use calm_ratelimit::Quota;

/// One limiter's keys and pause channel.
///
/// Every key carries the hash tag `{name}`, so the scripts, which touch all of them at once,
/// run on Redis Cluster too.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// The end of a server pause, in server microseconds.
    pub(crate) pause: String,
    /// One GCRA key per quota, in the limiter's order.
    pub(crate) quotas: Vec<String>,
    /// Where pauses are published.
    pub(crate) pauses_channel: String,
}

/// A quota as the scripts see it: microseconds, rounded so that the quota is never exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spacing {
    pub(crate) interval_us: u64,
    pub(crate) tolerance_us: u64,
}

/// The largest integer a Lua number holds exactly.
const EXACT: u64 = 1 << 53;

impl Spacing {
    /// `None` when the quota's numbers pass what the script computes exactly.
    pub(crate) fn of(quota: &Quota) -> Option<Spacing> {
        // NOTE: the interval rounds up (never faster than the quota); the burst is whole
        // intervals of it.
        let interval_us = u64::try_from(quota.interval().as_nanos().div_ceil(1_000)).ok()?;
        let burst = u64::from(quota.burst_size().get());
        let tolerance_us = interval_us.checked_mul(burst - 1)?;
        (interval_us.checked_mul(burst)? < EXACT / 2).then_some(Spacing {
            interval_us,
            tolerance_us,
        })
    }
}

impl Keys {
    pub(crate) fn new(prefix: &str, name: &str, spacings: &[Spacing]) -> Keys {
        let base = format!("{prefix}:{{{name}}}");
        Keys {
            pause: format!("{base}:pause"),
            quotas: spacings
                .iter()
                .map(|s| {
                    let burst = s.tolerance_us / s.interval_us + 1;
                    format!("{base}:gcra:{}us:{burst}", s.interval_us)
                })
                .collect(),
            pauses_channel: format!("{base}:pauses"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let spacings = [
            Spacing::of(&Quota::per_second(n(5))).unwrap(),
            Spacing::of(&Quota::per_period(n(12), Duration::from_secs(3)).unwrap()).unwrap(),
        ];
        let keys = Keys::new("calm:rl", "github:token-a", &spacings);
        assert_eq!(keys.pause, "calm:rl:{github:token-a}:pause");
        assert_eq!(
            keys.quotas,
            [
                "calm:rl:{github:token-a}:gcra:200000us:1",
                "calm:rl:{github:token-a}:gcra:250000us:1"
            ]
        );
        assert_eq!(keys.pauses_channel, "calm:rl:{github:token-a}:pauses");
    }

    #[test]
    fn spacing_rounds_towards_the_quota() {
        // 3 per second: 333,333,334 ns, so 333,334 µs.
        let s = Spacing::of(&Quota::per_second(n(3)).burst(n(4))).unwrap();
        assert_eq!(s.interval_us, 333_334);
        assert_eq!(s.tolerance_us, 3 * 333_334);
    }

    #[test]
    fn a_quota_past_exact_arithmetic_is_refused() {
        let huge = Quota::with_period(Duration::from_nanos(u64::MAX)).unwrap();
        assert_eq!(Spacing::of(&huge), None);
        let long_burst = Quota::per_day(n(1)).burst(n(1_000_000));
        assert_eq!(Spacing::of(&long_burst), None);
        let day = Quota::per_period(n(1), Duration::from_secs(86_400))
            .unwrap()
            .burst(n(1000));
        assert!(Spacing::of(&day).is_some());
    }
}
