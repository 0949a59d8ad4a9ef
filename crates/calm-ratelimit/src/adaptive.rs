//! [`Adaptive`]: a rate learned from the server's throttling responses, after CUBIC.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The smoothing of the measured rates: the weight of the newest half second.
const SMOOTHING: f64 = 0.8;

/// Throttles this soon after the one that lowered the rate belong to its episode.
const EPISODE: Duration = Duration::from_secs(1);

/// How an adaptive limiter learns the server's rate from its throttling responses.
///
/// Many APIs do not say their quota, or say it only by refusing. An adaptive limiter starts at
/// a configured rate (or at no limit of its own) and, from the responses it reads:
///
/// - on a **throttling response** (429, 503, or a 403 the quota headers call throttling),
///   takes the rate the server let through (the lowest of its own rate, the measured send
///   rate and the measured rate of responses that were not throttled) as the server's limit
///   for now, and drops to `beta` (0.7) times it. The throttles that follow within a second
///   belong to the same episode (requests already on their way, the rest of the server's
///   window) and do not lower it again;
/// - on **any other response**, grows back along a cubic curve that reaches that limit again
///   `K = ∛(limit × (1 − beta) / scale)` seconds after the throttle, flat around it, then
///   probes above it ever faster (`rate = scale × (t − K)³ + limit`);
/// - never goes above twice the **measured send rate** (responses per second, counted in
///   half-second buckets and smoothed), so a client that sends little does not learn a rate
///   it never tried; never below the `floor`; never above its fixed quotas, which stay hard
///   ceilings.
///
/// This is the AWS SDKs' "adaptive" client rate limiter (β = 0.7, scale 0.4, the same
/// measurement), with differences: it is per limiter, so one throttled API (or account) does
/// not slow unrelated ones; one episode of throttles lowers the rate once, not once per
/// throttled response (a server counting in fixed windows refuses everything until its window
/// ends, and lowering the rate for each of those would drive it to the floor); the rate the
/// server let through bounds the new limit, so a server that lowers its quota is followed in
/// two episodes rather than many; and a throttle before the first half second of measurement
/// starts from the configured rate rather than from zero.
///
/// A `Retry-After` or a quota header that says nothing remains still pauses every caller as
/// before; the adaptive rate is what paces them once the pause is over.
///
/// # What is shared
///
/// The learned rate belongs to the [`Limiter`](crate::Limiter): every clone, every
/// [`RateLimit`](crate::RateLimit) built from it and every task learn together. Two limiters
/// (two base URLs) learn independently. It learns from the responses its
/// [`RateLimit`](crate::RateLimit) layers read, so it needs their
/// [`server_hints`](crate::RateLimitLayer::server_hints) on (calm's `Client` turns them on;
/// a bare `RateLimitLayer` has them off).
///
/// Over the in-process backend ([`Limiter::adaptive`](crate::Limiter::adaptive)) the learned
/// rate is one more lane of its GCRA, admitted atomically with the quotas. Over another
/// backend ([`Limiter::adaptive_over`](crate::Limiter::adaptive_over), say
/// calm-ratelimit-redis's) the quotas and pauses stay in that backend, shared by every
/// process; the learned rate is this process's own, and paces it in front of the backend.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use calm_ratelimit::{Adaptive, Limiter, Quota};
///
/// // At most 100/s whatever it learns; start at 50/s.
/// let ceiling = Quota::per_second(NonZeroU32::new(100).unwrap());
/// let limiter = Limiter::adaptive([ceiling], Adaptive::starting_at(50.0)).unwrap();
/// assert_eq!(limiter.snapshot().learned_rate, Some(50.0));
/// # }
/// ```
///
/// # Settings
///
/// ```
/// use calm_ratelimit::Adaptive;
///
/// let adaptive = Adaptive::starting_at(20.0).floor(1.0);
/// assert_eq!(adaptive.start(), Some(20.0));
/// assert!(Adaptive::starting_at(f64::NAN).validate().is_err());
/// assert!(Adaptive::unthrottled().beta(1.5).validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Adaptive {
    start: Option<f64>,
    floor: f64,
    beta: f64,
    scale: f64,
}

impl Adaptive {
    /// Starts at `per_second` requests per second (within the fixed quotas).
    pub fn starting_at(per_second: f64) -> Adaptive {
        Adaptive {
            start: Some(per_second),
            ..Adaptive::unthrottled()
        }
    }

    /// Starts with no rate of its own (only the fixed quotas pace), until the first
    /// throttling response.
    pub fn unthrottled() -> Adaptive {
        Adaptive {
            start: None,
            floor: 0.5,
            beta: 0.7,
            scale: 0.4,
        }
    }

    /// The lowest rate it ever falls to, per second (default 0.5).
    pub fn floor(mut self, per_second: f64) -> Adaptive {
        self.floor = per_second;
        self
    }

    /// The share of the rate kept after a throttle (default 0.7), in (0, 1).
    pub fn beta(mut self, beta: f64) -> Adaptive {
        self.beta = beta;
        self
    }

    /// How fast the rate grows back, in requests per second per second cubed (default 0.4).
    pub fn scale(mut self, scale: f64) -> Adaptive {
        self.scale = scale;
        self
    }

    /// The starting rate, if any.
    #[must_use]
    pub fn start(&self) -> Option<f64> {
        self.start
    }

    /// Checks the settings: rates finite and above zero, `beta` in (0, 1), `scale` above zero.
    ///
    /// # Errors
    ///
    /// An [`InvalidAdaptive`] naming the setting.
    pub fn validate(&self) -> Result<(), InvalidAdaptive> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !self.start.is_none_or(positive) {
            return Err(InvalidAdaptive(
                "the starting rate must be finite and above zero",
            ));
        }
        if !positive(self.floor) {
            return Err(InvalidAdaptive("the floor must be finite and above zero"));
        }
        if !(self.beta > 0.0 && self.beta < 1.0) {
            return Err(InvalidAdaptive("beta must be between 0 and 1"));
        }
        if !positive(self.scale) {
            return Err(InvalidAdaptive("the scale must be finite and above zero"));
        }
        Ok(())
    }
}

/// An [`Adaptive`] setting out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidAdaptive(&'static str);

impl fmt::Display for InvalidAdaptive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid adaptive rate: {}", self.0)
    }
}

impl std::error::Error for InvalidAdaptive {}

/// The learning state of one limiter.
#[derive(Debug)]
pub(crate) struct Cubic {
    config: Adaptive,
    /// The fixed quotas' lowest rate (infinite without one).
    ceiling: f64,
    /// The rate learned; `None` until the first throttle of an unthrottled start.
    rate: Option<f64>,
    /// The rate last handed to the backend.
    applied: Option<f64>,
    /// The rate of the last throttle: where the cubic curve flattens.
    last_max: f64,
    last_throttle: Instant,
    /// Until when throttles belong to the episode of the last one that lowered the rate.
    episode_ends: Option<Instant>,
    /// `K`: seconds from the throttle to `last_max` again.
    window: f64,
    /// Responses per second, smoothed; zero until the first half second ends.
    sent: Rate,
    /// Responses that were not throttled, over the last second.
    passed: LastSecond,
    origin: Instant,
    /// The half second being counted (its index since `origin`).
    bucket: u64,
}

/// A count per half second, summed over the last whole second.
///
/// NOTE: not smoothed like the send rate: a server counting in fixed windows lets a burst
/// through at the start of its window and refuses the rest, so a half second can pass nothing
/// while the second passes the whole quota.
#[derive(Debug, Default)]
struct LastSecond {
    /// The counts of the last two half seconds that ended (the older first), if they did.
    ended: [Option<u64>; 2],
    count: u64,
}

impl LastSecond {
    /// Ends the half second counted, and `skipped` empty ones after it.
    fn fold(&mut self, skipped: u64) {
        let mut ended = [self.ended[1], Some(self.count)];
        for _ in 0..skipped.min(2) {
            ended = [ended[1], Some(0)];
        }
        self.ended = ended;
        self.count = 0;
    }

    /// Responses per second over the last second (the last half second, doubled, early on).
    fn get(&self) -> Option<f64> {
        match self.ended {
            [Some(older), Some(newer)] => Some((older + newer) as f64),
            [None, Some(only)] => Some(only as f64 * 2.0),
            _ => None,
        }
    }
}

/// A count per half second, smoothed into a rate per second.
#[derive(Debug, Default)]
struct Rate {
    /// Zero until the first half second ends.
    smoothed: f64,
    count: u64,
}

impl Rate {
    /// Folds the count of the `seconds` just ended into the rate.
    fn fold(&mut self, seconds: f64) {
        let current = self.count as f64 / seconds;
        self.smoothed = if self.smoothed > 0.0 {
            current * SMOOTHING + self.smoothed * (1.0 - SMOOTHING)
        } else {
            current
        };
        self.count = 0;
    }

    /// The rate, if one was measured.
    fn get(&self) -> Option<f64> {
        (self.smoothed > 0.0).then_some(self.smoothed)
    }
}

impl Cubic {
    pub(crate) fn new(config: Adaptive, ceiling: f64, now: Instant) -> Cubic {
        let rate = config
            .start
            .map(|start| start.min(ceiling).max(config.floor));
        Cubic {
            config,
            ceiling,
            rate,
            applied: rate,
            last_max: rate.unwrap_or(ceiling),
            last_throttle: now,
            episode_ends: None,
            window: 0.0,
            sent: Rate::default(),
            passed: LastSecond::default(),
            origin: now,
            bucket: 0,
        }
    }

    /// The rate paced at now, per second (`None` before the first throttle of an
    /// unthrottled start).
    pub(crate) fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Learns from one response; returns the new rate when the backend should pace at it: on
    /// a throttle, and when it moved by 1 % or more from the rate last returned.
    pub(crate) fn on_response(&mut self, now: Instant, throttled: bool) -> Option<f64> {
        self.measure(now, throttled);
        let c = &self.config;
        let episode = self.episode_ends.is_some_and(|end| now < end);
        let target = if throttled && episode {
            // NOTE: the same episode: the rate was lowered for it already.
            return None;
        } else if throttled {
            // NOTE: nothing passed in the last second is no measurement of the limit (the
            // server may refuse everything for a while): the send rate bounds it then.
            let passed = self.passed.get().filter(|p| *p > 0.0);
            let measured = [self.sent.get(), passed]
                .into_iter()
                .flatten()
                .fold(f64::INFINITY, f64::min);
            let let_through = match self.rate {
                Some(rate) => rate.min(measured),
                None if measured.is_finite() => measured,
                // NOTE: throttled before anything was measured, with no rate of its own: the
                // ceiling, else the count so far over the first half second.
                None if self.ceiling.is_finite() => self.ceiling,
                None => (self.sent.count as f64 * 2.0).max(c.floor),
            };
            self.last_max = let_through;
            self.window = (let_through * (1.0 - c.beta) / c.scale).cbrt();
            self.last_throttle = now;
            self.episode_ends = Some(now + EPISODE);
            let_through * c.beta
        } else {
            self.rate?;
            let t = now
                .saturating_duration_since(self.last_throttle)
                .as_secs_f64();
            c.scale * (t - self.window).powi(3) + self.last_max
        };
        // NOTE: the cap holds growth back, it never lowers the rate: a client that sends
        // little keeps the rate it has until a throttle says otherwise.
        let capped = match (throttled, self.sent.get(), self.rate) {
            (false, Some(sent), Some(rate)) => target.min((2.0 * sent).max(rate)),
            _ => target,
        };
        let rate = capped.min(self.ceiling).max(c.floor);
        self.rate = Some(rate);
        // NOTE: the cubic curve moves the rate a little on every response; pacing again at
        // each of those steps would replay the backend's queue for nothing.
        let moved = self
            .applied
            .is_none_or(|applied| (rate - applied).abs() >= applied * 0.01);
        if throttled || moved {
            self.applied = Some(rate);
            return Some(rate);
        }
        None
    }

    /// Counts a response into its half second; at a new half second, folds the last one's
    /// counts into the smoothed rates.
    fn measure(&mut self, now: Instant, throttled: bool) {
        let elapsed = now.saturating_duration_since(self.origin).as_millis();
        let bucket = u64::try_from(elapsed / 500).unwrap_or(u64::MAX);
        if bucket > self.bucket {
            let seconds = (bucket - self.bucket) as f64 / 2.0;
            self.sent.fold(seconds);
            self.passed.fold(bucket - self.bucket - 1);
            self.bucket = bucket;
        }
        self.sent.count += 1;
        if !throttled {
            self.passed.count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    /// `n` successes spread evenly over `from..to` seconds.
    fn successes(cubic: &mut Cubic, start: Instant, from: f64, to: f64, n: u32) {
        for i in 0..n {
            let t = from + (to - from) * f64::from(i) / f64::from(n);
            cubic.on_response(at(start, t), false);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_keeps_beta_of_the_rate_then_the_cubic_curve_returns_to_it() {
        let start = Instant::now();
        let mut cubic = Cubic::new(Adaptive::starting_at(40.0), f64::INFINITY, start);
        successes(&mut cubic, start, 0.0, 2.0, 80); // measured: 40/s
        assert_eq!(cubic.on_response(at(start, 2.0), true), Some(28.0));
        // K = ∛(40 × 0.3 / 0.4) = ∛30 ≈ 3.107 s: back at 40 then, and flat around it.
        let k = 30f64.cbrt();
        successes(&mut cubic, start, 2.0, 2.0 + k, (28.0 * k) as u32);
        cubic.on_response(at(start, 2.0 + k), false);
        let rate = cubic.rate().unwrap();
        assert!((rate - 40.0).abs() < 0.01, "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_stays_within_floor_ceiling_and_twice_the_measured_rate() {
        let start = Instant::now();
        let mut cubic = Cubic::new(Adaptive::starting_at(100.0).floor(2.0), 50.0, start);
        assert_eq!(cubic.rate(), Some(50.0), "the ceiling binds from the start");
        successes(&mut cubic, start, 0.0, 1.0, 10); // 10/s measured
        cubic.on_response(at(start, 1.0), true);
        assert_eq!(cubic.rate(), Some(7.0), "0.7 × the measured 10/s");
        for episode in 1..=20 {
            cubic.on_response(at(start, 1.0 + 1.5 * f64::from(episode)), true);
        }
        assert_eq!(cubic.rate(), Some(2.0), "never below the floor");
        // About 5/s for a minute, far past K: the curve alone would be in the thousands.
        successes(&mut cubic, start, 31.0, 90.0, 300);
        // Half seconds of 2 or 3 responses: never more than 6/s measured, so at most 12/s.
        let rate = cubic.rate().unwrap();
        assert!((8.0..=12.0).contains(&rate), "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn one_episode_lowers_the_rate_once_the_next_from_what_got_through() {
        let start = Instant::now();
        let mut cubic = Cubic::new(Adaptive::starting_at(40.0), f64::INFINITY, start);
        successes(&mut cubic, start, 0.0, 1.0, 40);
        assert_eq!(cubic.on_response(at(start, 1.0), true), Some(28.0));
        // The rest of the server's window: the same episode.
        for t in [1.2, 1.4, 1.6] {
            assert_eq!(cubic.on_response(at(start, t), true), None);
        }
        assert_eq!(cubic.rate(), Some(28.0));
        // A second later, a new episode: from what got through since (nothing but the
        // throttles), not from 28/s.
        let lowered = cubic.on_response(at(start, 2.5), true).unwrap();
        assert!(lowered < 0.7 * 28.0, "{lowered}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_sends_little_keeps_its_rate_until_throttled() {
        let start = Instant::now();
        let mut cubic = Cubic::new(Adaptive::starting_at(50.0), f64::INFINITY, start);
        // One response every 10 s for five minutes: 0.1/s measured.
        for i in 0..30 {
            cubic.on_response(at(start, 10.0 * f64::from(i)), false);
        }
        assert_eq!(cubic.rate(), Some(50.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_right_at_the_start_lowers_the_rate() {
        let start = Instant::now();
        let mut cubic = Cubic::new(Adaptive::starting_at(10.0), f64::INFINITY, start);
        assert_eq!(cubic.on_response(start, true), Some(7.0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unthrottled_start_paces_only_after_the_first_throttle() {
        let start = Instant::now();
        let mut cubic = Cubic::new(Adaptive::unthrottled(), f64::INFINITY, start);
        successes(&mut cubic, start, 0.0, 1.0, 30);
        assert_eq!(cubic.rate(), None);
        assert_eq!(cubic.on_response(at(start, 1.0), true), Some(30.0 * 0.7));
    }
}
