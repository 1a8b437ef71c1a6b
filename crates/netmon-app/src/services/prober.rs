//! Prober: runs probe jobs and publishes one `probe.completed` per job with every result of it.
//! A message may carry several jobs (small tenants' jobs share an SQS message): their probes run
//! together under one bound, and their events go out in one publish.

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

    /// The jobs of one message: every probe of them with at most `concurrency` in flight in all,
    /// then one `probe.completed` per job (its own id, tenant and group), all in one
    /// [`EventBus::publish`] so the bus can batch them. `redelivered` as in
    /// [`Self::run_job_again`], per job. A failed publish (even one after which some events went
    /// out) fails the call, so the message is retried whole; each job republishes under its
    /// stable envelope id, and consumers treat a result for a slot they have seen as a duplicate.
    pub async fn run_jobs(
        &self,
        jobs: &[ProbeJob],
        redelivered: bool,
    ) -> Result<Vec<Envelope>, HandleError> {
        let envelopes = self
            .run(jobs, redelivered, std::future::pending())
            .await?
            .unwrap_or_default();
        Ok(envelopes)
    }

    /// As [`Self::run_job`], unless `cancel` resolves first (a "check now" whose caller went
    /// away): then its probes stop, connections closed and evaluations abandoned, and nothing is
    /// published (`None`).
    pub async fn run_job_unless(
        &self,
        job: &ProbeJob,
        cancel: impl Future<Output = ()>,
    ) -> Result<Option<Envelope>, HandleError> {
        let envelopes = self.run(std::slice::from_ref(job), false, cancel).await?;
        Ok(envelopes.and_then(|mut e| e.pop()))
    }

    async fn run_or_cancelled(
        &self,
        job: &ProbeJob,
        redelivered: bool,
        cancel: impl Future<Output = ()>,
    ) -> Result<Envelope, HandleError> {
        self.run(std::slice::from_ref(job), redelivered, cancel)
            .await?
            .and_then(|mut e| e.pop())
            .ok_or_else(|| HandleError::Permanent(format!("job {} was cancelled", job.job_id)))
    }

    async fn run(
        &self,
        jobs: &[ProbeJob],
        redelivered: bool,
        cancel: impl Future<Output = ()>,
    ) -> Result<Option<Vec<Envelope>>, HandleError> {
        let now = self.clock.now();
        // Each probe is tagged with its job's index, so results go back to their own job.
        let mut work = Vec::new();
        let mut contexts = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let scheduled = job.correlation_id.is_none();
            let before = work.len();
            work.extend(
                job.targets
                    .iter()
                    .filter(|spec| {
                        !(redelivered && scheduled && now - job.scheduled_for > late_limit(spec))
                    })
                    .map(|spec| (i, job.tenant.clone(), spec.clone())),
            );
            let kept = work.len() - before;
            if kept < job.targets.len() {
                tracing::warn!(job = %job.job_id, skipped = job.targets.len() - kept,
                    late_s = (now - job.scheduled_for).num_seconds(),
                    "probes skipped: a redelivered job, too late for their slot");
            }
            let targets: Vec<AlertContext> = work[before..]
                .iter()
                .filter_map(|(_, _, spec)| AlertContext::of(spec))
                .collect();
            contexts.push(targets);
        }
        let clock = self.clock.as_ref();
        let probes = probe_tagged(
            self.engine.as_ref(),
            work,
            &self.location,
            self.concurrency,
            || clock.now(),
        );
        // Cancellation first: a job whose caller is already gone starts no probe at all.
        let tagged = tokio::select! {
            biased;
            () = cancel => {
                let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
                tracing::debug!(jobs = ?ids, "job cancelled: its caller went away");
                return Ok(None);
            }
            results = probes => results,
        };
        let mut results: Vec<Vec<ProbeResult>> = jobs.iter().map(|_| Vec::new()).collect();
        for (i, r) in tagged {
            if let Some(rs) = results.get_mut(i) {
                rs.push(r);
            }
        }
        let envelopes: Vec<Envelope> = jobs
            .iter()
            .zip(results)
            .zip(contexts)
            .map(|((job, results), targets)| self.envelope(job, results, targets))
            .collect();
        if !envelopes.is_empty() {
            self.bus.publish(envelopes.clone()).await?;
        }
        Ok(Some(envelopes))
    }

    /// A job's `probe.completed`.
    fn envelope(
        &self,
        job: &ProbeJob,
        mut results: Vec<ProbeResult>,
        targets: Vec<AlertContext>,
    ) -> Envelope {
        // Scheduled probes count for their slot, so a redelivered or re-planned job is a
        // duplicate to the alerter, not more evidence. "Check now" is extra evidence.
        if job.correlation_id.is_none() {
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
        env
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
    let work = work.into_iter().map(|(tenant, spec)| ((), tenant, spec));
    probe_tagged(engine, work.collect(), location, concurrency, started_at)
        .await
        .into_iter()
        .map(|((), r)| r)
        .collect()
}

/// [`probe_all`] with each result returned beside its probe's tag.
async fn probe_tagged<K: Send>(
    engine: &dyn ProbeEngine,
    work: Vec<(K, TenantId, TargetSpec)>,
    location: &str,
    concurrency: usize,
    started_at: impl Fn() -> DateTime<Utc>,
) -> Vec<(K, ProbeResult)> {
    // One task drives every probe (no per-probe spawn); the engine's connection halves run as
    // their own tasks, so I/O still proceeds in parallel.
    let started_at = &started_at;
    futures::stream::iter(work)
        .map(|(tag, tenant, spec)| async move {
            let at = started_at();
            let obs = engine.observe(&spec.check, spec.timeout.as_duration()).await;
            if let Some(e) = &obs.error {
                // Kind and message only: messages never contain header values or bodies.
                tracing::debug!(target_id = %spec.id, kind = ?e.kind, error = %e.message, "probe failed");
            }
            (tag, judge_off_worker(tenant, spec, location, at, obs).await)
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
