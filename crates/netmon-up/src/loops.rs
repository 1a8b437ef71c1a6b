//! The background loops of `netmon up`: probe workers fed by the scheduler's job channel, the
//! scheduler's wake-ups, and hourly history pruning.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_app::rpc::InProcessRpc;
use netmon_app::services::prober::ProberService;
use netmon_app::services::scheduler::Scheduler;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, Clock, JobQueue, TargetStore};
use netmon_core::rpc::{RpcOutcome, RpcReply};
use netmon_core::schedule;
use netmon_core::target::Target;
use netmon_embedded::SqliteStore;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tracing::{error, warn};

/// Job queue for one process: a bounded channel to the probe workers.
pub(crate) struct ChannelJobQueue(pub(crate) mpsc::Sender<ProbeJob>);

#[async_trait::async_trait]
impl JobQueue for ChannelJobQueue {
    async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        for job in jobs {
            self.0.send(job).await.map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }
}

pub(crate) async fn probe_workers(
    mut jobs: mpsc::Receiver<ProbeJob>,
    service: Arc<ProberService>,
    parallel_jobs: usize,
    done: watch::Sender<u64>,
    rpc: Arc<InProcessRpc>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(parallel_jobs));
    let done = Arc::new(done);
    let mut running = tokio::task::JoinSet::new();
    loop {
        let job = tokio::select! {
            job = jobs.recv() => job,
            _ = stopped(&mut shutdown) => None,
        };
        let Some(job) = job else { break };
        // A "check now" job does not take one of the scheduled rounds' slots: the API bounds how
        // many each tenant has waiting, and a tenant checking hung targets must not hold up
        // every other tenant's probes.
        let slot = if job.correlation_id.is_some() {
            None
        } else {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            Some(slot)
        };
        let (service, done, rpc, clock) =
            (service.clone(), done.clone(), rpc.clone(), clock.clone());
        // A "check now" whose caller went away (gone, or timed out) is not worth finishing.
        let caller_gone = job.correlation_id.as_deref().map(|id| rpc.caller_gone(id));
        running.spawn(async move {
            let cancel = async move {
                match caller_gone {
                    Some(gone) => gone.await,
                    None => std::future::pending().await,
                }
            };
            match service.run_job_unless(&job, cancel).await {
                Ok(_) => {}
                Err(e) => {
                    warn!(job = %job.job_id, error = %e, "probe job not fully handled");
                    // A waiting "check now" learns why instead of timing out.
                    if let Some(id) = &job.correlation_id {
                        rpc.resolve(RpcReply {
                            correlation_id: id.clone(),
                            tenant: job.tenant.clone(),
                            at: clock.now(),
                            outcome: RpcOutcome::Failure {
                                message: "the probe results could not be published".into(),
                            },
                        });
                    }
                }
            }
            done.send_modify(|n| *n += 1);
            drop(slot);
        });
        while running.try_join_next().is_some() {}
    }
    // In-flight probes end within their own timeouts.
    while running.join_next().await.is_some() {}
}

/// Resolves once shutdown is requested (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn load_targets(store: &SqliteStore) -> Vec<Target> {
    match store.all_targets().await {
        Ok(t) => t,
        Err(e) => {
            error!(error = %e, "cannot load targets; scheduling none until the next reload");
            Vec::new()
        }
    }
}

pub(crate) async fn scheduler_loop(
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
    targets_changed: Arc<Notify>,
    reload_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let reload_every =
        chrono::Duration::from_std(reload_every).unwrap_or(chrono::Duration::minutes(1));
    let mut targets = load_targets(&store).await;
    let mut loaded_at = clock.now();
    let start = clock.now();
    // Probe everything once at start, and report heartbeats already overdue (a deadline that
    // passed while we were down would otherwise wait for its next period).
    let first: Vec<_> = targets
        .iter()
        .filter(|t| schedule::is_polled(t))
        .map(|t| (t, start))
        .collect();
    if let Err(e) = scheduler
        .enqueue_and_check(
            schedule::into_jobs(first, scheduler.shard_size(), std::time::Duration::ZERO),
            &targets,
            DateTime::<Utc>::MIN_UTC,
            start,
        )
        .await
    {
        warn!(error = %e, "first scheduling round failed");
    }
    let mut after = start;
    // Read again only once passed (or after a reload): pings only move deadlines later.
    let mut heartbeat_deadline = next_heartbeat_deadline(&scheduler, &targets, start).await;
    loop {
        let next = targets
            .iter()
            .filter(|t| schedule::is_polled(t))
            .map(|t| schedule::next_due(t, after))
            .chain(heartbeat_deadline)
            .min()
            .unwrap_or(after + chrono::Duration::seconds(60))
            .min(after + chrono::Duration::seconds(60));
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = targets_changed.notified() => {
                targets = load_targets(&store).await;
                loaded_at = clock.now();
                heartbeat_deadline = next_heartbeat_deadline(&scheduler, &targets, loaded_at).await;
                continue;
            }
            _ = stopped(&mut shutdown) => return,
        }
        let now = clock.now();
        if now <= after {
            continue;
        }
        if now - loaded_at >= reload_every {
            targets = load_targets(&store).await;
            loaded_at = now;
        }
        match scheduler.tick(&targets, after, now).await {
            Ok(report) if report.jobs > 0 || report.missed_heartbeats > 0 => {
                tracing::debug!(?report, "scheduled");
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "scheduling round failed"),
        }
        after = now;
        if heartbeat_deadline.is_none_or(|d| d <= now) {
            heartbeat_deadline = next_heartbeat_deadline(&scheduler, &targets, now).await;
        }
    }
}

async fn next_heartbeat_deadline(
    scheduler: &Scheduler,
    targets: &[Target],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    scheduler
        .next_heartbeat_deadline(targets, now)
        .await
        .unwrap_or_else(|e| {
            warn!(error = %e, "heartbeat deadlines unknown; checking them each minute");
            None
        })
}

pub(crate) async fn prune_loop(
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
    retention: chrono::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match store.prune_history(clock.now() - retention).await {
            Ok(p) => tracing::debug!(?p, "history pruned"),
            Err(e) => warn!(error = %e, "history pruning failed"),
        }
        let next = clock.now() + chrono::Duration::hours(1);
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}
