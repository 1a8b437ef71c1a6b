//! Outbox relay: publishes committed incident events and marks them published only once the bus
//! accepted them, so an event is never lost between "state stored" and "notification sent".

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_core::events::Envelope;
use netmon_core::ports::{Clock, EventBus, Outbox};
use tokio::sync::{Mutex, Notify, watch};
use tracing::warn;

use crate::error::HandleError;

pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    bus: Arc<dyn EventBus>,
    wake: Notify,
    /// One flush at a time per process; across processes consumers dedupe on event id.
    flushing: Mutex<()>,
}

const BATCH: u32 = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    pub published: usize,
    pub failed: usize,
}

/// What one sweep of the outbox did, and how far behind it is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub published: usize,
    pub failed: usize,
    /// When the oldest event still unpublished after the sweep was committed; `None` when the
    /// sweep left nothing behind.
    pub oldest_unpublished: Option<DateTime<Utc>>,
}

impl OutboxRelay {
    pub fn new(outbox: Arc<dyn Outbox>, bus: Arc<dyn EventBus>) -> Self {
        Self {
            outbox,
            bus,
            wake: Notify::new(),
            flushing: Mutex::new(()),
        }
    }

    /// One pass over what is pending. Events that fail stay pending for the next pass.
    pub async fn flush(&self) -> Result<FlushReport, HandleError> {
        let swept = self.sweep().await?;
        if swept.failed > 0 {
            return Err(HandleError::Retryable(format!(
                "{} outbox event(s) not delivered",
                swept.failed
            )));
        }
        Ok(FlushReport {
            published: swept.published,
            failed: 0,
        })
    }

    /// One pass over what is pending for a sweeper that watches the outbox's age: a publish
    /// that fails is counted, not returned, and the oldest event left behind is reported (the
    /// pass reads oldest first). Only a failed read of the outbox is an error.
    pub async fn sweep(&self) -> Result<SweepReport, HandleError> {
        let _guard = self.flushing.lock().await;
        let pending = self.outbox.pending(BATCH).await?;
        let mut report = SweepReport::default();
        for entry in pending {
            let id = entry.envelope.id.clone();
            let published = match self.bus.publish(vec![entry.envelope]).await {
                Ok(()) => self
                    .outbox
                    .mark_published(std::slice::from_ref(&id))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match published {
                Ok(()) => report.published += 1,
                Err(error) => {
                    warn!(event = %id, %error, "outbox event not delivered; will retry");
                    report.failed += 1;
                    report.oldest_unpublished.get_or_insert(entry.created_at);
                }
            }
        }
        Ok(report)
    }

    /// Publishes events the caller has just committed to the outbox, and marks them published,
    /// without reading the outbox: a cloud outbox index is eventually consistent and may not
    /// show an event written a moment ago. One that fails stays pending for the next `flush`.
    pub(crate) async fn publish_committed(
        &self,
        events: Vec<Envelope>,
    ) -> Result<FlushReport, HandleError> {
        self.publish_each(events.into_iter()).await
    }

    async fn publish_each(
        &self,
        events: impl Iterator<Item = Envelope>,
    ) -> Result<FlushReport, HandleError> {
        let mut report = FlushReport::default();
        let mut last_error = None;
        for envelope in events {
            let id = envelope.id.clone();
            match self.bus.publish(vec![envelope]).await {
                Ok(()) => {
                    self.outbox
                        .mark_published(std::slice::from_ref(&id))
                        .await?;
                    report.published += 1;
                }
                Err(e) => {
                    warn!(event = %id, error = %e, "outbox event not delivered; will retry");
                    report.failed += 1;
                    last_error = Some(e.to_string());
                }
            }
        }
        match last_error {
            Some(e) => Err(HandleError::Retryable(format!(
                "{} outbox event(s) not delivered, last error: {e}",
                report.failed
            ))),
            None => Ok(report),
        }
    }

    /// Asks the background loop for a flush now.
    pub(crate) fn kick(&self) {
        self.wake.notify_one();
    }

    /// Background loop: flush when kicked, and every `retry_every` so failed deliveries and
    /// events left over from before a restart go out.
    pub async fn run(
        &self,
        clock: Arc<dyn Clock>,
        retry_every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let every =
            chrono::Duration::from_std(retry_every).unwrap_or(chrono::Duration::seconds(10));
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Errors are logged inside and retried on the next pass.
            let _ = self.flush().await;
            let deadline = clock.now() + every;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = clock.sleep_until(deadline) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
