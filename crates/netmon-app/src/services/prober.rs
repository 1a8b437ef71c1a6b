//! Prober: runs one probe job and publishes every result in one `probe.completed`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use netmon_core::TenantId;
use netmon_core::events::{AlertContext, Envelope, Event, ProbeBatch};
use netmon_core::jobs::ProbeJob;
use netmon_core::observation::{ErrorKind, Observation, ProbeError};
use netmon_core::ports::{Clock, EventBus, ProbeEngine};
use netmon_core::result::{ProbeResult, judge, judge_until};
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
        self.run_or_cancelled(job, false, std::future::pending())
            .await
    }

    /// A job delivered before (SQS after a crash or timeout): as [`Self::run_job`], skipping
    /// the probes now too late for their slot ([`late_limit`]).
    pub async fn run_job_again(&self, job: &ProbeJob) -> Result<Envelope, HandleError> {
        self.run_or_cancelled(job, true, std::future::pending())
            .await
    }

    /// As [`Self::run_job`], unless `cancel` resolves first (a "check now" whose caller went
    /// away): then its probes stop, connections closed and evaluations abandoned, and nothing is
    /// published (`None`).
    pub async fn run_job_unless(
        &self,
        job: &ProbeJob,
        cancel: impl Future<Output = ()>,
    ) -> Result<Option<Envelope>, HandleError> {
        self.run(job, false, cancel).await
    }

    async fn run_or_cancelled(
        &self,
        job: &ProbeJob,
        redelivered: bool,
        cancel: impl Future<Output = ()>,
    ) -> Result<Envelope, HandleError> {
        self.run(job, redelivered, cancel)
            .await?
            .ok_or_else(|| HandleError::Permanent(format!("job {} was cancelled", job.job_id)))
    }

    async fn run(
        &self,
        job: &ProbeJob,
        redelivered: bool,
        cancel: impl Future<Output = ()>,
    ) -> Result<Option<Envelope>, HandleError> {
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
        let targets: Vec<AlertContext> = work
            .iter()
            .filter_map(|(_, spec)| AlertContext::of(spec))
            .collect();
        let clock = self.clock.as_ref();
        let probes = probe_all(
            self.engine.as_ref(),
            work,
            &self.location,
            self.concurrency,
            || clock.now(),
        );
        // Cancellation first: a job whose caller is already gone starts no probe at all.
        let mut results = tokio::select! {
            biased;
            () = cancel => {
                tracing::debug!(job = %job.job_id, "job cancelled: its caller went away");
                return Ok(None);
            }
            results = probes => results,
        };
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
                group_level: job.group_level,
                group_size: job.group_size,
                targets,
            }),
            job.tenant.clone(),
            "prober",
            self.clock.now(),
        );
        // A request/response job ("check now"): the reply is matched on this.
        env.correlation_id = job.correlation_id.clone();
        self.bus.publish(vec![env.clone()]).await?;
        Ok(Some(env))
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

/// Observations above this (body and headers) are judged on the blocking pool: parsing JSON and
/// matching `pat()` over up to the probe's body cap (or the client's header cap), times up to
/// 50 conditions, may take milliseconds that would otherwise stall every task sharing this
/// async worker (the API among them).
const INLINE_BYTES: usize = 4 * 1024;

/// Longest one evaluation may take: the conditions not reached by then fail, shown as not
/// evaluated. One condition costs milliseconds at most (see `netmon_core::result`'s tests),
/// so only an overloaded process ever gets near it.
const EVALUATION_BUDGET: Duration = Duration::from_secs(1);

/// Evaluations running on the blocking pool right now (all probers of the process).
static EVALUATING: AtomicUsize = AtomicUsize::new(0);

/// How many condition evaluations run on the blocking pool at this moment; tests use it to show
/// that a cancelled check stops evaluating.
pub fn evaluations_running() -> usize {
    EVALUATING.load(Ordering::SeqCst)
}

fn observed_bytes(obs: &Observation) -> usize {
    let body = obs.body.as_ref().map_or(0, String::len);
    let headers: usize = obs.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    let answers: usize = obs.dns_answers.iter().map(String::len).sum();
    body + headers + answers
}

/// Sets its flag when dropped: the async side of an evaluation was dropped (its job cancelled),
/// or has its answer.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Counts one evaluation in [`EVALUATING`] while it lives.
struct Evaluating;

impl Evaluating {
    fn start() -> Self {
        EVALUATING.fetch_add(1, Ordering::SeqCst);
        Evaluating
    }
}

impl Drop for Evaluating {
    fn drop(&mut self) {
        EVALUATING.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn judge_off_worker(
    tenant: TenantId,
    spec: TargetSpec,
    location: &str,
    at: DateTime<Utc>,
    obs: Observation,
) -> ProbeResult {
    if observed_bytes(&obs) <= INLINE_BYTES {
        return judge(&tenant, &spec, location, at, &obs);
    }
    let (fallback_tenant, fallback_spec) = (tenant.clone(), spec.clone());
    let owned_location = location.to_owned();
    // A blocking task cannot be aborted: it checks between conditions whether anyone still
    // waits for it, and its time budget.
    let abandoned = Arc::new(AtomicBool::new(false));
    let _abandon_when_dropped = SetOnDrop(abandoned.clone());
    let evaluation = tokio::task::spawn_blocking(move || {
        let _counted = Evaluating::start();
        let deadline = Instant::now() + EVALUATION_BUDGET;
        let stop = || {
            if abandoned.load(Ordering::SeqCst) {
                Some("the check was cancelled")
            } else if Instant::now() >= deadline {
                Some("the evaluation time limit (1s) was reached")
            } else {
                None
            }
        };
        judge_until(&tenant, &spec, &owned_location, at, &obs, &stop)
    });
    match evaluation.await {
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
