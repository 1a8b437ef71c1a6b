//! A clock tests move by hand, so time-driven behaviour is tested without sleeping.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_core::ports::Clock;
use tokio::sync::watch;

pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        let (changed, _) = watch::channel(start);
        Self {
            now: Mutex::new(start),
            changed,
        }
    }

    /// Starts at a fixed, readable instant: 2026-11-22T10:00:00Z.
    pub fn at_fixed_start() -> Self {
        Self::new(DateTime::from_timestamp(1_795_860_000, 0).unwrap_or_default())
    }

    pub fn advance(&self, by: std::time::Duration) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or_default();
        let t = *now;
        drop(now);
        self.changed.send_replace(t);
        t
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
        self.changed.send_replace(to);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let mut rx = self.changed.subscribe();
        loop {
            if *rx.borrow_and_update() >= deadline {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn sleepers_wake_when_time_reaches_their_deadline() {
        let clock = Arc::new(ManualClock::at_fixed_start());
        let deadline = clock.now() + chrono::Duration::seconds(30);
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep_until(deadline).await });
        clock.advance(Duration::from_secs(10));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(20));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("sleeper woke")
            .expect("no panic");
    }
}
