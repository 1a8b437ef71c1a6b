//! Aggregated history: uptime and latency per hour or day. Every store adapter aggregates with
//! the same fixed-bucket histogram, so the numbers are identical whichever store serves them.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::result::{Outcome, ProbeResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn step(self) -> TimeDelta {
        match self {
            Granularity::Hour => TimeDelta::hours(1),
            Granularity::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket holding `t` (UTC hours and days).
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.step()).unwrap_or(t)
    }
}

/// Upper bounds (ms) of the latency buckets; a last, open bucket holds everything slower.
/// Roughly 1-2-3-5-7 per decade: percentiles are within about a third of a bucket's width.
pub const LATENCY_BOUNDS_MS: [f64; 24] = [
    1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0, 100.0, 150.0, 200.0, 300.0, 500.0,
    700.0, 1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0, 10_000.0, 30_000.0,
];

/// Counts per latency bucket. Serialized without trailing zeros to keep stored items small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LatencyHistogram(Vec<u32>);

impl LatencyHistogram {
    pub fn record(&mut self, ms: f64) {
        let i = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        self.0[i] = self.0[i].saturating_add(1);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|c| u64::from(*c)).sum()
    }

    pub fn counts(&self) -> &[u32] {
        &self.0
    }

    pub fn from_counts(counts: Vec<u32>) -> Self {
        let mut h = Self(counts);
        h.trim();
        h
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// The `q` quantile (0..=1), interpolated linearly inside its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0.0;
        for (i, c) in self.0.iter().enumerate() {
            let c = f64::from(*c);
            if c == 0.0 {
                continue;
            }
            if seen + c >= rank {
                let lo = if i == 0 {
                    0.0
                } else {
                    LATENCY_BOUNDS_MS[i - 1]
                };
                let hi = LATENCY_BOUNDS_MS
                    .get(i)
                    .copied()
                    .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2.0);
                return Some(lo + (hi - lo) * ((rank - seen) / c));
            }
            seen += c;
        }
        None
    }
}

/// One hour or day of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryBucket {
    pub start: DateTime<Utc>,
    pub probes: u32,
    pub up: u32,
    /// Latency of successful probes only: timeouts would otherwise drown the percentiles.
    pub latency: LatencyHistogram,
}

impl HistoryBucket {
    pub fn empty(start: DateTime<Utc>) -> Self {
        Self {
            start,
            probes: 0,
            up: 0,
            latency: LatencyHistogram::default(),
        }
    }

    pub fn add(&mut self, outcome: Outcome, duration_ms: f64) {
        self.probes = self.probes.saturating_add(1);
        if outcome == Outcome::Up {
            self.up = self.up.saturating_add(1);
            self.latency.record(duration_ms);
        }
    }

    pub fn merge(&mut self, other: &HistoryBucket) {
        self.probes = self.probes.saturating_add(other.probes);
        self.up = self.up.saturating_add(other.up);
        self.latency.merge(&other.latency);
    }

    /// Fraction of probes that were up, 0..=1; `None` without probes.
    pub fn uptime(&self) -> Option<f64> {
        (self.probes > 0).then(|| f64::from(self.up) / f64::from(self.probes))
    }

    pub fn p50_ms(&self) -> Option<f64> {
        self.latency.quantile(0.5)
    }

    pub fn p95_ms(&self) -> Option<f64> {
        self.latency.quantile(0.95)
    }
}

/// Groups results into buckets, ascending by start, skipping empty buckets. Adapters that keep
/// raw results use this; those that keep rollups merge stored buckets instead.
pub fn aggregate<'a>(
    results: impl IntoIterator<Item = (DateTime<Utc>, Outcome, f64)> + 'a,
    granularity: Granularity,
) -> Vec<HistoryBucket> {
    let mut buckets: std::collections::BTreeMap<DateTime<Utc>, HistoryBucket> =
        std::collections::BTreeMap::new();
    for (at, outcome, ms) in results {
        let start = granularity.floor(at);
        buckets
            .entry(start)
            .or_insert_with(|| HistoryBucket::empty(start))
            .add(outcome, ms);
    }
    buckets.into_values().collect()
}

/// Hourly buckets (ascending) as buckets of `granularity`: days merge their hours, so a store
/// keeping hourly rollups answers day queries with the same numbers as [`aggregate`].
pub fn regroup(
    hours: impl IntoIterator<Item = HistoryBucket>,
    granularity: Granularity,
) -> Vec<HistoryBucket> {
    let mut out: Vec<HistoryBucket> = Vec::new();
    for h in hours {
        let start = granularity.floor(h.start);
        match out.last_mut() {
            Some(last) if last.start == start => last.merge(&h),
            _ => {
                let mut b = HistoryBucket::empty(start);
                b.merge(&h);
                out.push(b);
            }
        }
    }
    out
}

/// Milliseconds to whole microseconds, rounded *up* so that for every integer bound `b`,
/// `from_micros(to_micros(x)) <= b` exactly when `x <= b`. The latency histogram's bounds are
/// whole milliseconds, so a stored duration lands in the same bucket as the original. Non-finite
/// values become 0. Stores that keep durations as integers use this pair.
pub fn to_micros(ms: f64) -> i64 {
    if !ms.is_finite() {
        return 0;
    }
    // Beyond ~31 years precision is moot; integers stay exact in f64 below this.
    if ms.abs() > 1e12 {
        return (ms * 1000.0) as i64;
    }
    let mut n = (ms * 1000.0).ceil();
    // Correct the product's rounding so that (n-1)/1000 < ms <= n/1000 as decoding computes it.
    while n / 1000.0 < ms {
        n += 1.0;
    }
    while (n - 1.0) / 1000.0 >= ms {
        n -= 1.0;
    }
    n as i64
}

pub fn from_micros(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// `(started_at, outcome, duration)` of a result, the part history keeps.
pub fn sample(r: &ProbeResult) -> (DateTime<Utc>, Outcome, f64) {
    (r.started_at, r.outcome, r.duration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(
            1_800_000_000 - 1_800_000_000 % 86_400 + h * 3600 + m * 60,
            0,
        )
        .unwrap()
    }

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=100 {
            h.record(ms as f64);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p95 = h.quantile(0.95).unwrap();
        assert!((40.0..=60.0).contains(&p50), "{p50}");
        assert!((85.0..=100.0).contains(&p95), "{p95}");
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
        let mut slow = LatencyHistogram::default();
        slow.record(90_000.0);
        assert!(slow.quantile(0.5).unwrap() > 30_000.0);
    }

    #[test]
    fn trailing_zeros_are_not_stored() {
        let mut h = LatencyHistogram::default();
        h.record(4.0);
        assert_eq!(serde_json::to_string(&h).unwrap(), "[0,0,0,1]");
        assert_eq!(LatencyHistogram::from_counts(vec![1, 0, 0]).counts(), [1]);
    }

    #[test]
    fn aggregates_by_hour_and_day() {
        let samples = vec![
            (at(0, 1), Outcome::Up, 10.0),
            (at(0, 2), Outcome::Down, 5000.0),
            (at(1, 0), Outcome::Up, 20.0),
            (at(25, 0), Outcome::Up, 30.0),
        ];
        let hours = aggregate(samples.clone(), Granularity::Hour);
        assert_eq!(hours.len(), 3);
        assert_eq!((hours[0].probes, hours[0].up), (2, 1));
        assert_eq!(hours[0].uptime(), Some(0.5));
        assert_eq!(
            hours[0].latency.count(),
            1,
            "down probes do not count for latency"
        );
        let days = aggregate(samples, Granularity::Day);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].start, at(0, 0));
        assert_eq!((days[0].probes, days[1].probes), (3, 1));
    }
}
