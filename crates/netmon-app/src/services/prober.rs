//! Prober: runs one probe job and publishes every result in one `probe.completed`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use netmon_core::TenantId;
use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::jobs::ProbeJob;
use netmon_core::observation::{ErrorKind, Observation, ProbeError};
use netmon_core::ports::{Clock, EventBus, ProbeEngine};
use netmon_core::result::{ProbeResult, judge};
use netmon_core::schedule::late_limit;
use netmon_core::target::TargetSpec;

use crate::error::HandleError;

pub struct ProberService {
    engine: Arc<dyn ProbeEngine>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    location: String,
    concurrency: usize,
}

/// A redelivered job's probe starting later than [`late_limit`] after its slot is skipped. The
/// first delivery crashed or timed out, so the probe would observe the target at a time that
/// belongs to a later slot, and a blip shorter than the threshold could count in several slots.
/// The next slot probes it on time, and the alerter counts failures only over adjacent slots,
/// so a skipped slot delays, never invents. (A late tick does not plan such probes at all.)
impl ProberService {
    pub fn new(
        engine: Arc<dyn ProbeEngine>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        location: String,
        concurrency: usize,
    ) -> Self {
        Self {
            engine,
            bus,
            clock,
            location,
            concurrency,
        }
    }

    /// Probes every target of the job; returns the published envelope.
    pub async fn run_job(&self, job: &ProbeJob) -> Result<Envelope, HandleError> {
        self.run(job, false).await
    }

    /// A job delivered before (SQS after a crash or timeout): as [`Self::run_job`], skipping
    /// the probes now too late for their slot ([`late_limit`]).
    pub async fn run_job_again(&self, job: &ProbeJob) -> Result<Envelope, HandleError> {
        self.run(job, true).await
    }

    async fn run(&self, job: &ProbeJob, redelivered: bool) -> Result<Envelope, HandleError> {
        let now = self.clock.now();
        let scheduled = job.correlation_id.is_none();
        let work: Vec<_> = job
            .targets
            .iter()
            .filter(|spec| {
                !(redelivered && scheduled && now - job.scheduled_for > late_limit(spec))
            })
            .map(|spec| (job.tenant.clone(), spec.clone()))
            .collect();
        if work.len() < job.targets.len() {
            tracing::warn!(job = %job.job_id, skipped = job.targets.len() - work.len(),
                late_s = (now - job.scheduled_for).num_seconds(),
                "probes skipped: a redelivered job, too late for their slot");
        }
        let clock = self.clock.as_ref();
        let mut results = probe_all(
            self.engine.as_ref(),
            work,
            &self.location,
            self.concurrency,
            || clock.now(),
        )
        .await;
        // Scheduled probes count for their slot, so a redelivered or re-planned job is a
        // duplicate to the alerter, not more evidence. "Check now" is extra evidence.
        if scheduled {
            for r in &mut results {
                r.slot = Some(job.scheduled_for);
            }
        }
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

/// Probes every target with at most `concurrency` (at least 1) in flight, each stamped with
/// `started_at()` when its probe actually starts (later probes of a large round wait for a free
/// slot), and judges each by its conditions. Each probe is bounded by its own timeout, so a
/// slow target delays nobody else. Results come back in completion order.
pub async fn probe_all(
    engine: &dyn ProbeEngine,
    work: Vec<(TenantId, TargetSpec)>,
    location: &str,
    concurrency: usize,
    started_at: impl Fn() -> DateTime<Utc>,
) -> Vec<ProbeResult> {
    // One task drives every probe (no per-probe spawn); the engine's connection halves run as
    // their own tasks, so I/O still proceeds in parallel.
    let started_at = &started_at;
    futures::stream::iter(work)
        .map(|(tenant, spec)| async move {
            let at = started_at();
            let obs = engine.observe(&spec.check, spec.timeout.as_duration()).await;
            if let Some(e) = &obs.error {
                // Kind and message only: messages never contain header values or bodies.
                tracing::debug!(target_id = %spec.id, kind = ?e.kind, error = %e.message, "probe failed");
            }
            judge_off_worker(tenant, spec, location, at, obs).await
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// Bodies above this are judged on the blocking pool: parsing JSON and matching `pat()` over
/// up to the probe's body cap, times up to 50 conditions, may take milliseconds that would
/// otherwise stall every task sharing this async worker (the API among them).
const INLINE_BODY_BYTES: usize = 4 * 1024;

async fn judge_off_worker(
    tenant: TenantId,
    spec: TargetSpec,
    location: &str,
    at: DateTime<Utc>,
    obs: Observation,
) -> ProbeResult {
    if obs
        .body
        .as_ref()
        .is_none_or(|b| b.len() <= INLINE_BODY_BYTES)
    {
        return judge(&tenant, &spec, location, at, &obs);
    }
    let (fallback_tenant, fallback_spec) = (tenant.clone(), spec.clone());
    let owned_location = location.to_owned();
    match tokio::task::spawn_blocking(move || judge(&tenant, &spec, &owned_location, at, &obs))
        .await
    {
        Ok(result) => result,
        Err(e) => {
            // Only a panic or a runtime shutting down gets here: report the probe as failed.
            tracing::error!(target_id = %fallback_spec.id, error = %e, "judging a probe result failed");
            let obs = Observation {
                error: Some(ProbeError::new(
                    ErrorKind::Internal,
                    "the conditions could not be evaluated",
                )),
                ..Observation::default()
            };
            judge(&fallback_tenant, &fallback_spec, location, at, &obs)
        }
    }
}
