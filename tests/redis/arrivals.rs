//! What the server saw: arrival instants from calm-mock's log, and the figures the tests
//! assert on.

use std::collections::BTreeSet;
use std::time::Duration;

use calm_mock::MockApi;
use tokio::time::Instant;

use crate::worker::WORKER_HEADER;

/// One request as the server stamped it (on the parent's monotonic clock, when its head was
/// read), with the worker that sent it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    pub(crate) at: Instant,
    pub(crate) worker: usize,
}

/// Every request the mock received, in order of arrival.
#[derive(Debug)]
pub(crate) struct Arrivals(pub(crate) Vec<Arrival>);

impl Arrivals {
    /// # Panics
    ///
    /// If the mock's log dropped requests or a request names no worker.
    pub(crate) fn of(api: &MockApi) -> Arrivals {
        let requests = api.requests();
        assert_eq!(
            requests.len(),
            api.request_count(),
            "the mock's log is full"
        );
        let mut arrivals: Vec<Arrival> = requests
            .iter()
            .map(|r| Arrival {
                at: r.at,
                worker: r.headers[WORKER_HEADER].to_str().unwrap().parse().unwrap(),
            })
            .collect();
        // NOTE: the mock stamps a request before it takes the log's lock, so two requests
        // arriving together may be logged out of order by a few microseconds.
        arrivals.sort_by_key(|a| a.at);
        Arrivals(arrivals)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The arrivals of the fullest half-open window `[t, t + window)`.
    pub(crate) fn densest(&self, window: Duration) -> &[Arrival] {
        let mut end = 0;
        let mut best = &self.0[..0];
        for start in 0..self.0.len() {
            while end < self.0.len() && self.0[end].at < self.0[start].at + window {
                end += 1;
            }
            if end - start > best.len() {
                best = &self.0[start..end];
            }
        }
        best
    }

    /// `window` (a run of these arrivals) as "+ms/worker" from its first, and where that lies
    /// in the whole run: what crowded a window.
    pub(crate) fn describe(&self, window: &[Arrival]) -> String {
        let (Some(start), Some(first)) = (self.0.first(), window.first()) else {
            return String::new();
        };
        let offsets: Vec<String> = window
            .iter()
            .map(|a| format!("+{}/w{}", (a.at - first.at).as_millis(), a.worker))
            .collect();
        format!(
            "at {:?} into the run: {}",
            first.at - start.at,
            offsets.join(" ")
        )
    }

    /// The span in which every worker was sending: from the first arrival of the last worker
    /// to start, to the last arrival of the first worker to stop.
    pub(crate) fn overlap(&self) -> (Instant, Instant) {
        let workers: BTreeSet<usize> = self.0.iter().map(|a| a.worker).collect();
        let of = |w: usize| self.0.iter().filter(move |a| a.worker == w).map(|a| a.at);
        let from = workers.iter().map(|&w| of(w).min().unwrap()).max().unwrap();
        let to = workers.iter().map(|&w| of(w).max().unwrap()).min().unwrap();
        assert!(from < to, "the workers never ran together");
        (from, to)
    }

    /// Arrivals per second from `from` to `to`, counting the intervals between them: `k`
    /// arrivals at a steady rate `r` span `(k - 1) / r`.
    pub(crate) fn rate(&self, from: Instant, to: Instant) -> f64 {
        let k = self
            .0
            .iter()
            .filter(|a| (from..=to).contains(&a.at))
            .count();
        k.saturating_sub(1) as f64 / (to - from).as_secs_f64()
    }

    /// The workers that sent a request at or after `t`.
    pub(crate) fn workers_from(&self, t: Instant) -> BTreeSet<usize> {
        self.0
            .iter()
            .filter(|a| a.at >= t)
            .map(|a| a.worker)
            .collect()
    }
}
