//! Outbox relay: publishes committed incident events and marks them published only once the bus
//! accepted them, so an event is never lost between "state stored" and "notification sent".

use std::sync::Arc;
use std::time::Duration;

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
        let _guard = self.flushing.lock().await;
        let pending = self.outbox.pending(BATCH).await?;
        self.publish_each(pending.into_iter().map(|e| e.envelope))
            .await
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
