//! Recorder: keeps probe history for uptime, latency and the status page.

use std::sync::Arc;

use netmon_core::events::{Envelope, Event};
use netmon_core::ports::HistoryStore;

use crate::error::HandleError;

pub struct Recorder {
    history: Arc<dyn HistoryStore>,
}

impl Recorder {
    pub fn new(history: Arc<dyn HistoryStore>) -> Self {
        Self { history }
    }

    pub async fn handle(&self, env: &Envelope) -> Result<usize, HandleError> {
        let Event::ProbeCompleted(batch) = &env.event else {
            return Err(HandleError::Permanent(format!(
                "recorder does not handle {}",
                env.event_type().as_str()
            )));
        };
        self.history
            .record_batch(&batch.results, batch.group_level)
            .await?;
        Ok(batch.results.len())
    }
}
