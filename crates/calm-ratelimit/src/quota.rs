//! [`Quota`]: how many requests per period, and how many at once.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A rate limit: `n` requests per period, spaced evenly, with an optional burst.
///
/// A quota is enforced by GCRA (the generic cell rate algorithm): requests are spaced one
/// *emission interval* (`period / n`, rounded up to the next nanosecond so the quota is never
/// exceeded by rounding) apart. The burst lets up to `burst` requests go at once after an
/// idle spell; the default burst is 1, so requests are spaced evenly, as the classic
/// `RateLimiter(requests_per_minute)` does.
///
/// # Guarantee
///
/// For every two admitted requests `i < j` (in admission order),
/// `t_j - t_i >= (j - i + 1 - burst) * interval`. So any window of length `w` admits at most
/// `burst + floor(w / interval)` requests when both ends are included, and a window of length
/// `period` (half-open, like a server's fixed window) admits at most `n + burst - 1`: exactly
/// `n` with the default burst of 1. Pick burst 1 when the server counts fixed windows.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::Quota;
///
/// let n = |n| NonZeroU32::new(n).unwrap();
/// // 60 per minute: one request every second.
/// let q = Quota::per_minute(n(60));
/// assert_eq!(q.interval(), Duration::from_secs(1));
///
/// // 10 per second, 5 of them at once after an idle spell.
/// let q = Quota::per_second(n(10)).burst(n(5));
/// assert_eq!(q.burst_size().get(), 5);
///
/// // 5 per 10 seconds.
/// let q = Quota::per_period(n(5), Duration::from_secs(10)).unwrap();
/// assert_eq!(q.interval(), Duration::from_secs(2));
///
/// // A zero period is refused, not a panic.
/// assert!(Quota::with_period(Duration::ZERO).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Emission interval in nanoseconds; never zero.
    interval: u64,
    burst: NonZeroU32,
}

impl Quota {
    /// `n` requests per second.
    #[must_use]
    pub const fn per_second(n: NonZeroU32) -> Quota {
        Quota::spread(NANOS_PER_SEC, n)
    }

    /// `n` requests per minute.
    #[must_use]
    pub const fn per_minute(n: NonZeroU32) -> Quota {
        Quota::spread(60 * NANOS_PER_SEC, n)
    }

    /// `n` requests per hour.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::Quota;
    ///
    /// let q = Quota::per_hour(NonZeroU32::new(5000).unwrap()); // GitHub's REST quota
    /// assert_eq!(q.interval(), Duration::from_millis(720));
    /// ```
    #[must_use]
    pub const fn per_hour(n: NonZeroU32) -> Quota {
        Quota::spread(3_600 * NANOS_PER_SEC, n)
    }

    /// `n` requests per day.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::Quota;
    ///
    /// let q = Quota::per_day(NonZeroU32::new(24).unwrap());
    /// assert_eq!(q.interval(), Duration::from_secs(3600));
    /// ```
    #[must_use]
    pub const fn per_day(n: NonZeroU32) -> Quota {
        Quota::spread(86_400 * NANOS_PER_SEC, n)
    }

    /// One request per `period`.
    ///
    /// Returns `None` when `period` is zero or longer than `u64::MAX` nanoseconds (about 584
    /// years).
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_ratelimit::Quota;
    ///
    /// let q = Quota::with_period(Duration::from_millis(250)).unwrap();
    /// assert_eq!(q.interval(), Duration::from_millis(250));
    /// assert!(Quota::with_period(Duration::ZERO).is_none());
    /// assert!(Quota::with_period(Duration::MAX).is_none());
    /// ```
    #[must_use]
    pub fn with_period(period: Duration) -> Option<Quota> {
        let nanos = u64::try_from(period.as_nanos()).ok()?;
        (nanos > 0).then_some(Quota {
            interval: nanos,
            burst: NonZeroU32::MIN,
        })
    }

    /// `n` requests per `period`, spaced evenly (`period / n` apart, rounded up).
    ///
    /// Returns `None` when `period` is zero or longer than `u64::MAX` nanoseconds.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::Quota;
    ///
    /// let three = NonZeroU32::new(3).unwrap();
    /// // 3 per second: 333 333 334 ns apart, so 3 intervals never fit in less than a second.
    /// let q = Quota::per_period(three, Duration::from_secs(1)).unwrap();
    /// assert_eq!(q.interval(), Duration::from_nanos(333_333_334));
    /// assert!(Quota::per_period(three, Duration::ZERO).is_none());
    /// ```
    #[must_use]
    pub fn per_period(n: NonZeroU32, period: Duration) -> Option<Quota> {
        let nanos = u64::try_from(period.as_nanos()).ok()?;
        (nanos > 0).then(|| Quota::spread(nanos, n))
    }

    /// Lets up to `burst` requests go at once after an idle spell (default 1).
    ///
    /// The long-run rate does not change; see the guarantee in the type docs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Limiter, Quota};
    /// use tokio::time::Instant;
    ///
    /// let n = |n| NonZeroU32::new(n).unwrap();
    /// let limiter = Limiter::new(Quota::per_second(n(1)).burst(n(3)));
    /// let start = Instant::now();
    /// for _ in 0..3 {
    ///     limiter.acquire().await.unwrap();
    /// }
    /// assert_eq!(start.elapsed(), Duration::ZERO); // three at once
    /// limiter.acquire().await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_secs(1)); // then one per second
    /// # }
    /// ```
    #[must_use]
    pub const fn burst(self, burst: NonZeroU32) -> Quota {
        Quota { burst, ..self }
    }

    /// The emission interval: the spacing between requests once the burst is spent.
    #[must_use]
    pub const fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// How many requests may go at once after an idle spell.
    #[must_use]
    pub const fn burst_size(&self) -> NonZeroU32 {
        self.burst
    }

    pub(crate) const fn interval_nanos(&self) -> u64 {
        self.interval
    }

    /// How far ahead of its theoretical arrival time a request may go (GCRA's `τ`); exact,
    /// so u128 (it can pass u64 nanoseconds).
    pub(crate) const fn tolerance_nanos(&self) -> u128 {
        self.interval as u128 * (self.burst.get() as u128 - 1)
    }

    const fn spread(period_nanos: u64, n: NonZeroU32) -> Quota {
        let n = n.get() as u64;
        // NOTE: rounded up, so that `n` intervals never fit in less than `period`: rounding
        // down would let a client at exactly the quota send `n + 1` within one window.
        let interval = period_nanos.div_ceil(n);
        Quota {
            interval,
            burst: NonZeroU32::MIN,
        }
    }
}

impl fmt::Display for Quota {
    /// The quota as people write it: `10/s`, `5000/h`, `1 per 1.234567s`, with the burst when
    /// there is one (`10/s, burst 5`).
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::Quota;
    ///
    /// let n = |n| NonZeroU32::new(n).unwrap();
    /// assert_eq!(Quota::per_second(n(10)).to_string(), "10/s");
    /// assert_eq!(Quota::per_second(n(3)).to_string(), "3/s");
    /// assert_eq!(Quota::per_hour(n(5000)).to_string(), "5000/h");
    /// assert_eq!(Quota::per_minute(n(90)).burst(n(5)).to_string(), "90/min, burst 5");
    /// // The smallest unit that says it exactly:
    /// assert_eq!(Quota::per_minute(n(60)).to_string(), "1/s");
    /// let slow = Quota::with_period(Duration::from_millis(1500)).unwrap();
    /// assert_eq!(slow.to_string(), "40/min");
    /// let odd = Quota::with_period(Duration::from_micros(1_234_567)).unwrap();
    /// assert_eq!(odd.to_string(), "1 per 1.234567s");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1_000_000_000, "s"),
            (60_000_000_000, "min"),
            (3_600_000_000_000, "h"),
            (86_400_000_000_000, "day"),
        ];
        // NOTE: the constructors store `period.div_ceil(n)`; the unit whose `n` gives this
        // interval back is the one the quota was made with.
        let per_unit = UNITS.iter().find_map(|&(period, unit)| {
            let n = period.div_ceil(self.interval);
            (period.div_ceil(n) == self.interval).then_some((n, unit))
        });
        match per_unit {
            Some((n, unit)) => write!(f, "{n}/{unit}")?,
            None => write!(f, "1 per {:?}", self.interval())?,
        }
        if self.burst.get() > 1 {
            write!(f, ", burst {}", self.burst)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("interval", &self.interval())
            .field("burst", &self.burst)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn constructors_spread_the_period() {
        assert_eq!(
            Quota::per_second(n(10)).interval(),
            Duration::from_millis(100)
        );
        assert_eq!(Quota::per_minute(n(60)).interval(), Duration::from_secs(1));
        assert_eq!(Quota::per_hour(n(60)).interval(), Duration::from_secs(60));
        assert_eq!(Quota::per_day(n(24)).interval(), Duration::from_secs(3600));
        assert_eq!(Quota::per_second(n(1)).burst_size(), n(1));
    }

    #[test]
    fn intervals_round_up() {
        let q = Quota::per_second(n(3));
        assert_eq!(q.interval_nanos(), 333_333_334);
        assert!(q.interval() * 3 >= Duration::from_secs(1));
    }

    #[test]
    fn invalid_periods_are_refused() {
        assert!(Quota::with_period(Duration::ZERO).is_none());
        assert!(Quota::with_period(Duration::MAX).is_none());
        assert!(Quota::per_period(n(3), Duration::ZERO).is_none());
        assert_eq!(
            Quota::with_period(Duration::from_millis(250))
                .unwrap()
                .interval(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn burst_sets_tolerance() {
        let q = Quota::per_second(n(10)).burst(n(5));
        assert_eq!(q.tolerance_nanos(), 400_000_000);
        assert_eq!(Quota::per_second(n(10)).tolerance_nanos(), 0);
    }
}
