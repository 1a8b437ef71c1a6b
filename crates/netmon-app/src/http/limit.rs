//! Per-caller token buckets: one per API key, one per client IP for requests without a valid
//! key. In memory and per process (each Lambda instance counts on its own), which is enough to
//! stop a runaway script; it is not a quota.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Sustained requests per second per caller.
    #[serde(default = "default_rate")]
    pub per_second: f64,
    /// Requests a caller may make at once before the rate applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rate() -> f64 {
    20.0
}
fn default_burst() -> u32 {
    100
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_second: default_rate(),
            burst: default_burst(),
        }
    }
}

/// Callers remembered at most; beyond it, buckets that have refilled are forgotten first
/// (forgetting a full bucket changes nothing).
const MAX_CALLERS: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Takes one token for `caller`, or says how long until one is available.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let RateLimits { per_second, burst } = self.limits;
        let burst = f64::from(burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst
            });
            if buckets.len() >= MAX_CALLERS {
                // Every bucket is in use: refuse newcomers rather than grow without bound.
                return Err(Duration::from_secs(1));
            }
        }
        let b = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else if per_second > 0.0 {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        } else {
            Err(Duration::from_secs(3600))
        }
    }
}

/// Counts what each key (a tenant, a client IP) holds open, up to `max` each; a [`Slot`] gives
/// its place back when dropped.
pub struct Slots<K: Eq + Hash> {
    max: usize,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for `key`, or `None` when it holds `max` already.
    pub fn take(&self, key: &K) -> Option<Slot<K>> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            key: key.clone(),
            counts: self.counts.clone(),
        })
    }
}

/// One place taken from [`Slots`].
pub struct Slot<K: Eq + Hash> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_per_caller() {
        let l = RateLimiter::new(RateLimits {
            per_second: 0.5,
            burst: 3,
        });
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        let wait = l.check("a").expect_err("burst used up");
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert!(l.check("b").is_ok(), "callers are counted apart");
    }

    #[test]
    fn slots_are_counted_per_key_and_given_back() {
        let slots = Slots::new(2);
        let a1 = slots.take(&"a").expect("first");
        let _a2 = slots.take(&"a").expect("second");
        assert!(slots.take(&"a").is_none(), "full");
        assert!(slots.take(&"b").is_some(), "keys are counted apart");
        drop(a1);
        assert!(slots.take(&"a").is_some(), "given back on drop");
    }
}
