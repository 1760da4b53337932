//! Load shapes: a closed loop of N requests in flight or an open loop of seeded Poisson (gamma)
//! arrivals, bounded by a request count or a duration; the arrival schedule replays exactly from
//! its seed, so the same level can be put on another engine (or over HTTP) unchanged.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};

/// How requests arrive at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// Closed loop: this many requests in flight; a new one starts as soon as one finishes.
    Concurrency(u32),
    /// Open loop: requests per second, arriving on the seeded schedule whatever the engine does.
    Rate(f64),
}

impl Level {
    /// The key part of a results entry, as sweeps label theirs: `concurrency=8`, `request_rate=2.5`.
    pub fn label(&self) -> String {
        match self {
            Self::Concurrency(n) => format!("concurrency={n}"),
            Self::Rate(r) => format!("request_rate={r}"),
        }
    }
}

/// What ends a level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// After this many requests were issued (and have finished).
    Requests(u32),
    /// No request is issued after this much time; those in flight finish.
    Duration(Duration),
}

/// One level of load: arrivals, the cap on requests in flight, and the bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadShape {
    /// Closed or open loop.
    pub level: Level,
    /// Gamma shape of the inter-arrival times (1 is Poisson; below 1 burstier, above 1 steadier).
    pub burstiness: f64,
    /// At most this many requests in flight (open loop; a closed loop's is its N).
    pub max_concurrency: Option<u32>,
    /// When the level ends.
    pub bound: Bound,
    /// Seed of the arrival schedule.
    pub seed: u64,
}

impl LoadShape {
    /// Requests in flight at most, before the engine's own limit.
    pub fn streams(&self) -> Option<u32> {
        match self.level {
            Level::Concurrency(n) => Some(self.max_concurrency.map_or(n, |m| m.min(n))),
            Level::Rate(_) => self.max_concurrency,
        }
    }

    /// The open loop's arrival offsets from the level start, in order; empty for a closed loop.
    /// A request bound gives that many arrivals, a duration bound every arrival before its end.
    pub fn arrivals(&self) -> Vec<Duration> {
        let Level::Rate(rate) = self.level else {
            return Vec::new();
        };
        let mut gaps = Gaps::new(rate, self.burstiness, self.seed);
        let mut out = Vec::new();
        let mut t = 0.0f64;
        loop {
            match self.bound {
                Bound::Requests(n) if out.len() >= n as usize => break,
                // MAX_ARRIVALS keeps a very high rate from making the schedule unbounded in memory.
                Bound::Duration(d) if t >= d.as_secs_f64() || out.len() >= MAX_ARRIVALS => break,
                _ => {}
            }
            out.push(Duration::from_secs_f64(t));
            t += gaps.next();
        }
        out
    }
}

/// Arrivals one open-loop level may hold (a duration bound at a very high rate stops here).
pub const MAX_ARRIVALS: usize = 1_000_000;

/// Seeded inter-arrival gaps: gamma with shape `burstiness` and mean `1 / rate` (an exponential,
/// hence Poisson arrivals, at burstiness 1), as `vllm bench serve --burstiness` draws them.
struct Gaps {
    rng: StdRng,
    gamma: Option<Gamma<f64>>,
    mean: f64,
}

impl Gaps {
    fn new(rate: f64, burstiness: f64, seed: u64) -> Self {
        let mean = if rate.is_finite() && rate > 0.0 {
            1.0 / rate
        } else {
            0.0
        };
        let gamma = (mean > 0.0)
            .then(|| Gamma::new(burstiness, mean / burstiness).ok())
            .flatten();
        Self {
            rng: StdRng::seed_from_u64(seed),
            gamma,
            mean,
        }
    }

    fn next(&mut self) -> f64 {
        match &self.gamma {
            Some(g) => g.sample(&mut self.rng),
            None => self.mean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(level: Level, bound: Bound, seed: u64) -> LoadShape {
        LoadShape {
            level,
            burstiness: 1.0,
            max_concurrency: None,
            bound,
            seed,
        }
    }

    #[test]
    fn a_seed_replays_the_same_schedule_and_another_does_not() {
        let a = shape(Level::Rate(4.0), Bound::Requests(200), 7).arrivals();
        let b = shape(Level::Rate(4.0), Bound::Requests(200), 7).arrivals();
        let c = shape(Level::Rate(4.0), Bound::Requests(200), 8).arrivals();
        assert_eq!(a.len(), 200);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0], Duration::ZERO);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        // The mean gap is near 1 / rate (200 draws of an exponential: within 25 %).
        let mean = a[199].as_secs_f64() / 199.0;
        assert!((mean - 0.25).abs() < 0.0625, "mean gap {mean}");
    }

    #[test]
    fn duration_bounds_and_closed_loops() {
        let d = shape(
            Level::Rate(10.0),
            Bound::Duration(Duration::from_secs(3)),
            1,
        );
        let a = d.arrivals();
        assert!(a.iter().all(|t| *t < Duration::from_secs(3)));
        assert!(a.len() > 10 && a.len() < 60, "{}", a.len());
        let closed = shape(Level::Concurrency(4), Bound::Requests(9), 1);
        assert!(closed.arrivals().is_empty());
        assert_eq!(closed.streams(), Some(4));
        let capped = LoadShape {
            max_concurrency: Some(2),
            ..closed
        };
        assert_eq!(capped.streams(), Some(2));
        assert_eq!(Level::Concurrency(8).label(), "concurrency=8");
        assert_eq!(Level::Rate(2.5).label(), "request_rate=2.5");
    }

    #[test]
    fn burstiness_keeps_the_rate_and_widens_the_gaps() {
        let gaps = |b: f64| {
            let s = LoadShape {
                burstiness: b,
                ..shape(Level::Rate(5.0), Bound::Requests(2000), 3)
            };
            let a = s.arrivals();
            let g: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
            let m = g.iter().sum::<f64>() / g.len() as f64;
            let var = g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / g.len() as f64;
            (m, var.sqrt() / m)
        };
        let (m_bursty, cv_bursty) = gaps(0.25);
        let (m_steady, cv_steady) = gaps(4.0);
        assert!((m_bursty - 0.2).abs() < 0.04 && (m_steady - 0.2).abs() < 0.04);
        assert!(
            cv_bursty > 1.5 && cv_steady < 0.7,
            "{cv_bursty} {cv_steady}"
        );
    }
}
