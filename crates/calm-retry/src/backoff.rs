//! [`Backoff`]: how long to wait before each retry.

use std::time::Duration;

use crate::error::{ConfigError, ConfigErrorKind};

/// How long to wait before each retry: a schedule (none, constant, exponential or urllib3's),
/// a cap, and a [`Jitter`].
///
/// The wait before retry `n` (1 for the first retry) is computed from the schedule and capped
/// at [`max`](Backoff::max) ([`raw_delay`](Backoff::raw_delay)), then jittered and capped
/// again: no wait ever exceeds the cap. A `Retry-After` header
/// replaces the backoff for that retry (see [`RetryPolicy`](crate::RetryPolicy)).
///
/// Jitter draws from a [`fastrand`] RNG. Without [`seed`](Backoff::seed) each request gets a
/// randomly seeded one; with a seed each request starts from that seed, so tests are
/// deterministic (and every request draws the same sequence — use seeds in tests only).
///
/// Invalid values (a NaN factor, a jitter fraction above 1) are reported by
/// [`Backoff::validate`] and when the layer is built, never by a panic.
///
/// # Examples
///
/// urllib3's `Retry(backoff_factor=1)`: no wait before the first retry, then 2 s, 4 s, 8 s, ...
///
/// ```
/// use std::time::Duration;
/// use calm_retry::Backoff;
///
/// let waits: Vec<_> = Backoff::urllib3(1.0).delays().take(4).collect();
/// assert_eq!(waits, [0, 2, 4, 8].map(Duration::from_secs));
/// ```
///
/// Exponential with equal jitter, seeded for a reproducible schedule:
///
/// ```
/// use std::time::Duration;
/// use calm_retry::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100))
///     .factor(3.0)
///     .max(Duration::from_secs(1))
///     .jitter(Jitter::Equal)
///     .seed(7);
/// let waits: Vec<_> = backoff.delays().take(4).collect();
/// // Each wait lies in [raw/2, raw] of the raw schedule 100 ms, 300 ms, 900 ms, 1 s (capped).
/// for (wait, raw) in waits.iter().zip([100u64, 300, 900, 1000]) {
///     assert!(*wait >= Duration::from_millis(raw) / 2 && *wait <= Duration::from_millis(raw));
/// }
/// assert_eq!(waits, backoff.delays().take(4).collect::<Vec<_>>());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    kind: Kind,
    max: Duration,
    jitter: Jitter,
    seed: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    None,
    Constant(Duration),
    Exponential { base: Duration, factor: f64 },
    Urllib3 { factor: f64 },
}

/// How a [`Backoff`] randomises each wait. `raw` is the un-jittered wait of the schedule,
/// already capped ([`Backoff::raw_delay`]).
///
/// Whatever the jitter, the result is capped at the backoff's [`max`](Backoff::max).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use calm_retry::{Backoff, Jitter};
///
/// // ±10 % around a constant 1 s.
/// let backoff = Backoff::constant(Duration::from_secs(1)).jitter(Jitter::Proportional(0.1));
/// for wait in backoff.delays().take(20) {
///     assert!(wait >= Duration::from_millis(900) && wait <= Duration::from_millis(1100));
/// }
///
/// // A fraction above 1 is refused when the layer is built, not at request time.
/// let wild = Backoff::default().jitter(Jitter::Proportional(1.5));
/// assert!(wild.validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly `raw`.
    None,
    /// Uniform in `[0, raw]` ("full jitter": the fewest calls overall when many clients back
    /// off at once).
    Full,
    /// Uniform in `[raw/2, raw]` ("equal jitter": keeps half of the wait).
    Equal,
    /// Uniform in `[first, 3 × previous wait]`, where `first` is the schedule's first
    /// non-zero raw wait ("decorrelated jitter"); the schedule's growth factor is not used.
    Decorrelated,
    /// `raw` ± the given fraction, uniform: `Proportional(0.1)` is ±10 %. Must be finite and in
    /// `0.0..=1.0`.
    Proportional(f64),
}

impl Default for Backoff {
    /// [`Backoff::exponential`] from 250 ms: factor 2, capped at 30 s, full jitter.
    fn default() -> Self {
        Backoff::exponential(Duration::from_millis(250))
    }
}

impl Backoff {
    /// The cap of [`Backoff::exponential`] and [`Backoff::none`] unless changed: 30 s.
    /// [`Backoff::constant`] starts with the larger of this and its wait.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(30);

    /// urllib3's `DEFAULT_BACKOFF_MAX`: 120 s.
    pub const URLLIB3_MAX: Duration = Duration::from_secs(120);

    /// No wait at all between attempts.
    ///
    /// ```
    /// use calm_retry::Backoff;
    ///
    /// assert!(Backoff::none().delays().take(5).all(|wait| wait.is_zero()));
    /// ```
    pub fn none() -> Self {
        Backoff {
            kind: Kind::None,
            max: Self::DEFAULT_MAX,
            jitter: Jitter::None,
            seed: None,
        }
    }

    /// The same wait before every retry, no jitter unless set. The cap starts at the larger
    /// of `wait` and [`DEFAULT_MAX`](Self::DEFAULT_MAX), so a long constant wait is not cut.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// let waits: Vec<_> = Backoff::constant(Duration::from_secs(2)).delays().take(3).collect();
    /// assert_eq!(waits, [Duration::from_secs(2); 3]);
    ///
    /// let long = Backoff::constant(Duration::from_secs(45));
    /// assert_eq!(long.max_wait(), Duration::from_secs(45));
    /// assert_eq!(long.raw_delay(1), Duration::from_secs(45));
    /// ```
    pub fn constant(wait: Duration) -> Self {
        Backoff {
            kind: Kind::Constant(wait),
            max: Self::DEFAULT_MAX.max(wait),
            jitter: Jitter::None,
            seed: None,
        }
    }

    /// `base × factor^(n-1)` before retry `n`: growth factor 2, capped at
    /// [`DEFAULT_MAX`](Self::DEFAULT_MAX) (30 s), [`Jitter::Full`]. Change them with
    /// [`factor`](Self::factor), [`max`](Self::max), [`jitter`](Self::jitter).
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100));
    /// // The schedule before jitter: 100 ms, 200 ms, 400 ms, ..., then 30 s at most.
    /// assert_eq!(backoff.raw_delay(1), Duration::from_millis(100));
    /// assert_eq!(backoff.raw_delay(3), Duration::from_millis(400));
    /// assert_eq!(backoff.raw_delay(20), Duration::from_secs(30));
    /// // Full jitter: each wait is drawn from [0, raw].
    /// for (n, wait) in (1..).zip(backoff.delays().take(10)) {
    ///     assert!(wait <= backoff.raw_delay(n));
    /// }
    /// ```
    pub fn exponential(base: Duration) -> Self {
        Backoff {
            kind: Kind::Exponential { base, factor: 2.0 },
            max: Self::DEFAULT_MAX,
            jitter: Jitter::Full,
            seed: None,
        }
    }

    /// urllib3 2.x's schedule, exactly: no wait before the first retry, then
    /// `backoff_factor × 2^(n-1)` seconds before retry `n`, capped at 120 s, no jitter.
    ///
    /// `Retry(total=3, backoff_factor=1)` waits 0 s, 2 s, 4 s; so does
    /// `RetryPolicy::default().max_retries(3).backoff(Backoff::urllib3(1.0))`.
    /// (urllib3's `backoff_max` maps to [`max`](Self::max). Its `backoff_jitter` adds up to
    /// that many seconds to each wait, which no [`Jitter`] reproduces exactly; the closest is
    /// [`Jitter::Proportional`].) The factor must be finite and ≥ 0.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// let waits: Vec<_> = Backoff::urllib3(0.5).delays().take(4).collect();
    /// assert_eq!(waits, [0, 1000, 2000, 4000].map(Duration::from_millis));
    /// // urllib3's DEFAULT_BACKOFF_MAX caps it at 120 s.
    /// assert_eq!(Backoff::urllib3(0.5).raw_delay(30), Duration::from_secs(120));
    /// assert!(Backoff::urllib3(-1.0).validate().is_err());
    /// ```
    pub fn urllib3(backoff_factor: f64) -> Self {
        Backoff {
            kind: Kind::Urllib3 {
                factor: backoff_factor,
            },
            max: Self::URLLIB3_MAX,
            jitter: Jitter::None,
            seed: None,
        }
    }

    /// The growth factor of an [`exponential`](Self::exponential) backoff (finite, ≥ 1).
    /// Other schedules ignore it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, Jitter};
    ///
    /// let triple = Backoff::exponential(Duration::from_millis(10)).factor(3.0);
    /// assert_eq!(triple.raw_delay(3), Duration::from_millis(90));
    ///
    /// // urllib3's schedule always doubles.
    /// assert_eq!(Backoff::urllib3(1.0).factor(3.0), Backoff::urllib3(1.0));
    ///
    /// // Below 1 would shrink the waits: refused when the layer is built.
    /// assert!(Backoff::exponential(Duration::from_millis(10)).factor(0.5).validate().is_err());
    /// ```
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        if let Kind::Exponential { base, .. } = self.kind {
            self.kind = Kind::Exponential { base, factor };
        }
        self
    }

    /// The cap: no single wait is longer, whatever the schedule and jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, Jitter};
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1))
    ///     .jitter(Jitter::None)
    ///     .max(Duration::from_secs(5));
    /// let waits: Vec<_> = backoff.delays().take(5).collect();
    /// assert_eq!(waits, [1, 2, 4, 5, 5].map(Duration::from_secs));
    /// assert_eq!(backoff.max_wait(), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// How each wait is randomised; see [`Jitter`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, Jitter};
    ///
    /// // Without jitter the schedule is exact.
    /// let exact = Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::None);
    /// let waits: Vec<_> = exact.delays().take(3).collect();
    /// assert_eq!(waits, [100, 200, 400].map(Duration::from_millis));
    /// ```
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Seeds the jitter RNG: every request's draws start from this seed, so schedules are
    /// reproducible. For tests; leave unseeded in production so clients do not move in step.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// let seeded = Backoff::exponential(Duration::from_millis(100)).seed(42);
    /// let first: Vec<_> = seeded.delays().take(5).collect();
    /// assert_eq!(first, seeded.delays().take(5).collect::<Vec<_>>());
    /// assert_ne!(first, seeded.seed(43).delays().take(5).collect::<Vec<_>>());
    /// ```
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The cap set by [`max`](Self::max).
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// assert_eq!(Backoff::default().max_wait(), Backoff::DEFAULT_MAX);
    /// assert_eq!(Backoff::urllib3(1.0).max_wait(), Backoff::URLLIB3_MAX);
    /// assert_eq!(Backoff::none().max(Duration::from_secs(1)).max_wait(), Duration::from_secs(1));
    /// ```
    pub fn max_wait(&self) -> Duration {
        self.max
    }

    /// Checks that every number makes sense (what [`RetryLayer::new`](crate::RetryLayer::new)
    /// checks for the backoff).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::BackoffFactor`] for a non-finite or too small factor,
    /// [`ConfigErrorKind::Jitter`] for a proportional jitter outside `0.0..=1.0`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{error::ConfigErrorKind, Backoff, Jitter};
    ///
    /// assert!(Backoff::default().validate().is_ok());
    ///
    /// let nan = Backoff::exponential(Duration::from_millis(100)).factor(f64::NAN);
    /// assert_eq!(nan.validate().unwrap_err().kind(), ConfigErrorKind::BackoffFactor);
    ///
    /// let wide = Backoff::default().jitter(Jitter::Proportional(2.0));
    /// assert_eq!(wide.validate().unwrap_err().kind(), ConfigErrorKind::Jitter);
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.kind {
            Kind::Exponential { factor, .. } if !(factor.is_finite() && factor >= 1.0) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::BackoffFactor,
                    "the exponential backoff factor must be finite and at least 1",
                ))
            }
            Kind::Urllib3 { factor } if !(factor.is_finite() && factor >= 0.0) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::BackoffFactor,
                    "the urllib3 backoff factor must be finite and not negative",
                ))
            }
            _ => {}
        }
        if let Jitter::Proportional(p) = self.jitter {
            if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
                return Err(ConfigError::new(
                    ConfigErrorKind::Jitter,
                    "proportional jitter must be a finite fraction in 0.0..=1.0",
                ));
            }
        }
        Ok(())
    }

    /// The un-jittered, capped wait before retry `n` (1 for the first retry).
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(250)); // full jitter
    /// assert_eq!(backoff.raw_delay(1), Duration::from_millis(250));
    /// assert_eq!(backoff.raw_delay(4), Duration::from_secs(2));
    /// // Huge retry numbers saturate at the cap instead of overflowing.
    /// assert_eq!(backoff.raw_delay(u32::MAX), Backoff::DEFAULT_MAX);
    /// ```
    pub fn raw_delay(&self, retry: u32) -> Duration {
        let max = self.max.as_secs_f64();
        let secs = match self.kind {
            Kind::None => 0.0,
            Kind::Constant(wait) => wait.as_secs_f64(),
            Kind::Exponential { base, factor } => {
                scaled(base.as_secs_f64(), factor, retry.saturating_sub(1))
            }
            Kind::Urllib3 { .. } if retry <= 1 => 0.0,
            Kind::Urllib3 { factor } => scaled(factor, 2.0, retry - 1),
        };
        secs_to_duration(secs, max)
    }

    /// The waits this backoff yields for retries 1, 2, 3, ... (an endless iterator), drawn
    /// the way [`Retry`](crate::Retry) draws them for one request whose server sends no
    /// `Retry-After`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::Backoff;
    ///
    /// // Four retries under the default backoff (full jitter) wait at most 3.75 s in all.
    /// let backoff = Backoff::default();
    /// let worst: Duration = (1..=4).map(|n| backoff.raw_delay(n)).sum();
    /// assert_eq!(worst, Duration::from_millis(250 + 500 + 1000 + 2000));
    /// let drawn: Duration = backoff.delays().take(4).sum();
    /// assert!(drawn <= worst);
    /// ```
    pub fn delays(&self) -> Delays {
        Delays {
            backoff: *self,
            retry: 0,
            prev: Duration::ZERO,
            rng: self.rng(),
        }
    }

    pub(crate) fn rng(&self) -> fastrand::Rng {
        match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        }
    }

    /// The jittered wait before retry `retry`, given the previous wait.
    pub(crate) fn sample(&self, retry: u32, prev: Duration, rng: &mut fastrand::Rng) -> Duration {
        let max = self.max.as_secs_f64();
        let raw = self.raw_delay(retry).as_secs_f64();
        let secs = match self.jitter {
            Jitter::None => raw,
            Jitter::Full => raw * rng.f64(),
            Jitter::Equal => raw / 2.0 + raw / 2.0 * rng.f64(),
            Jitter::Proportional(p) => raw * (1.0 + p * (2.0 * rng.f64() - 1.0)),
            Jitter::Decorrelated => {
                let first = self.first_nonzero().as_secs_f64();
                let prev = prev.as_secs_f64().max(first);
                let hi = (prev * 3.0).max(first);
                first + (hi - first) * rng.f64()
            }
        };
        secs_to_duration(secs, max)
    }

    fn first_nonzero(&self) -> Duration {
        match self.kind {
            Kind::Urllib3 { .. } => self.raw_delay(2),
            _ => self.raw_delay(1),
        }
    }
}

/// `x × base^exp`; zero stays zero even when the power overflows to infinity (0 × ∞ is NaN).
fn scaled(x: f64, base: f64, exp: u32) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * powi(base, exp)
    }
}

fn powi(base: f64, exp: u32) -> f64 {
    // NOTE: powi takes an i32; anything past that is far beyond every cap anyway.
    base.powi(exp.min(i32::MAX as u32) as i32)
}

/// Seconds to a Duration in `[0, max]`, whatever the float (NaN and infinities included).
fn secs_to_duration(secs: f64, max: f64) -> Duration {
    let secs = if secs.is_nan() {
        max
    } else {
        secs.clamp(0.0, max)
    };
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// The endless sequence of waits of a [`Backoff`]; see [`Backoff::delays`].
///
/// A clone carries on from the same point with the same random draws.
///
/// # Examples
///
/// ```
/// use calm_retry::Backoff;
///
/// let mut delays = Backoff::default().delays();
/// delays.next();
/// let fork = delays.clone();
/// assert!(delays.take(3).eq(fork.take(3)));
/// ```
#[derive(Clone, Debug)]
pub struct Delays {
    backoff: Backoff,
    retry: u32,
    prev: Duration,
    rng: fastrand::Rng,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.retry = self.retry.saturating_add(1);
        let wait = self.backoff.sample(self.retry, self.prev, &mut self.rng);
        self.prev = wait;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn urllib3_schedule_is_exact() {
        let waits: Vec<_> = Backoff::urllib3(0.5).delays().take(5).collect();
        assert_eq!(waits, [ms(0), ms(1000), ms(2000), ms(4000), ms(8000)]);
        // capped at 120 s, as urllib3's DEFAULT_BACKOFF_MAX
        assert_eq!(
            Backoff::urllib3(1.0).raw_delay(10),
            Duration::from_secs(120)
        );
        assert_eq!(Backoff::urllib3(0.0).raw_delay(5), Duration::ZERO);
    }

    #[test]
    fn exponential_grows_and_caps() {
        let b = Backoff::exponential(ms(100))
            .jitter(Jitter::None)
            .max(ms(1000));
        let waits: Vec<_> = b.delays().take(6).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        // huge retry numbers saturate at the cap instead of overflowing
        assert_eq!(b.raw_delay(u32::MAX), ms(1000));
    }

    #[test]
    fn zero_schedules_stay_zero_at_any_retry_number() {
        // 0 × 2^n is 0 even once 2^n overflows to infinity (0 × ∞ is NaN).
        for b in [Backoff::urllib3(0.0), Backoff::exponential(Duration::ZERO)] {
            for retry in [1025, 5000, u32::MAX] {
                assert_eq!(b.raw_delay(retry), Duration::ZERO, "{b:?} retry {retry}");
            }
        }
    }

    #[test]
    fn constant_and_none() {
        assert!(Backoff::none().delays().take(3).all(|d| d.is_zero()));
        assert!(Backoff::constant(ms(300))
            .delays()
            .take(3)
            .all(|d| d == ms(300)));
    }

    #[test]
    fn jitters_stay_in_their_ranges_and_under_the_cap() {
        let cap = ms(5000);
        for seed in 0..50 {
            for jitter in [
                Jitter::Full,
                Jitter::Equal,
                Jitter::Decorrelated,
                Jitter::Proportional(0.25),
            ] {
                let b = Backoff::exponential(ms(100))
                    .max(cap)
                    .jitter(jitter)
                    .seed(seed);
                let mut prev = Duration::ZERO;
                for (i, wait) in b.delays().take(12).enumerate() {
                    let raw = b.raw_delay(i as u32 + 1);
                    assert!(wait <= cap, "{jitter:?}: {wait:?} above the cap");
                    match jitter {
                        Jitter::Full => assert!(wait <= raw),
                        Jitter::Equal => assert!(wait >= raw / 2 && wait <= raw),
                        Jitter::Proportional(_) => {
                            assert!(wait >= raw.mul_f64(0.75) - ms(1));
                            assert!(wait <= raw.mul_f64(1.25).min(cap));
                        }
                        Jitter::Decorrelated => {
                            assert!(wait >= ms(100) - Duration::from_nanos(1));
                            assert!(wait <= (prev.max(ms(100)) * 3).min(cap));
                        }
                        Jitter::None => unreachable!(),
                    }
                    prev = wait;
                }
            }
        }
    }

    #[test]
    fn seeds_reproduce() {
        let b = Backoff::default().seed(42);
        let a: Vec<_> = b.delays().take(5).collect();
        assert_eq!(a, b.delays().take(5).collect::<Vec<_>>());
        let c: Vec<_> = b.seed(43).delays().take(5).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn validation() {
        assert!(Backoff::default().validate().is_ok());
        assert!(Backoff::urllib3(0.0).validate().is_ok());
        let bad = [
            Backoff::urllib3(-1.0),
            Backoff::urllib3(f64::NAN),
            Backoff::exponential(ms(1)).factor(0.5),
            Backoff::exponential(ms(1)).factor(f64::INFINITY),
        ];
        for b in bad {
            assert_eq!(
                b.validate().unwrap_err().kind(),
                ConfigErrorKind::BackoffFactor,
                "{b:?}"
            );
        }
        for p in [-0.1, 1.5, f64::NAN] {
            let b = Backoff::default().jitter(Jitter::Proportional(p));
            assert_eq!(b.validate().unwrap_err().kind(), ConfigErrorKind::Jitter);
        }
    }

    #[test]
    fn factor_only_changes_exponential() {
        assert_eq!(Backoff::urllib3(1.0).factor(9.0), Backoff::urllib3(1.0));
        assert_eq!(
            Backoff::exponential(ms(10))
                .factor(3.0)
                .jitter(Jitter::None)
                .raw_delay(3),
            ms(90)
        );
    }
}
