//! Prober: runs one probe job and publishes every result in one `probe.completed`.

use std::sync::Arc;

use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{Clock, EventBus};
use netmon_probe::Prober;

use crate::error::HandleError;

pub struct ProberService {
    prober: Arc<Prober>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    location: String,
    concurrency: usize,
}

impl ProberService {
    pub fn new(
        prober: Arc<Prober>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        location: String,
        concurrency: usize,
    ) -> Self {
        Self {
            prober,
            bus,
            clock,
            location,
            concurrency,
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Probes every target of the job; returns the published envelope.
    pub async fn run_job(&self, job: &ProbeJob) -> Result<Envelope, HandleError> {
        let work = job
            .targets
            .iter()
            .map(|spec| (job.tenant.clone(), spec.clone()))
            .collect();
        let results = self
            .prober
            .probe_many_with_clock(work, &self.location, self.concurrency, self.clock.as_ref())
            .await;
        let mut env = Envelope::with_id(
            // Stable per job and location: a redelivered job republishes under the same id.
            format!("probe:{}:{}", job.job_id, self.location),
            Event::ProbeCompleted(ProbeBatch {
                job_id: job.job_id.clone(),
                location: self.location.clone(),
                results,
            }),
            job.tenant.clone(),
            "prober",
            self.clock.now(),
        );
        // A request/response job ("check now"): the reply is matched on this.
        env.correlation_id = job.correlation_id.clone();
        self.bus.publish(vec![env.clone()]).await?;
        Ok(env)
    }
}
