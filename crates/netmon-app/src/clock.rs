//! Wall-clock time for production; tests use `netmon_testkit::clock::ManualClock`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_core::ports::Clock;

pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}
