//! The background loops of `netmon up`: probe workers fed by the scheduler's job channel, the
//! scheduler's wake-ups, and hourly history pruning.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_app::rpc::InProcessRpc;
use netmon_app::services::prober::ProberService;
use netmon_app::services::scheduler::Scheduler;
use netmon_core::history::Granularity;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, Clock, JobQueue, StoreError, TargetStore};
use netmon_core::rpc::{RpcOutcome, RpcReply};
use netmon_core::schedule::{self, DueQueue};
use netmon_core::target::{CheckSpec, Target};
use netmon_embedded::sqlite::SETTLE;
use netmon_embedded::{Retention, SqliteStore};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
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

/// The targets, and the store's token read just before them; no token when they could not be
/// read, so the next periodic reread is not skipped.
async fn load_targets(store: &dyn TargetStore) -> (Vec<Target>, Option<u64>) {
    let token = targets_token(store).await;
    match store.all_targets().await {
        Ok(t) => (t, token),
        Err(e) => {
            error!(error = %e, "cannot load targets; scheduling none until the next reload");
            (Vec::new(), None)
        }
    }
}

/// Heartbeat targets go to the heartbeat checks; the rest to the due queue, which keeps the
/// enabled polled ones (targets whose interval is unchanged keep their due instant).
fn split_targets(targets: Vec<Target>, queue: &mut DueQueue, after: DateTime<Utc>) -> Vec<Target> {
    let (beats, polled): (Vec<Target>, Vec<Target>) = targets
        .into_iter()
        .partition(|t| matches!(t.spec.check, CheckSpec::Heartbeat(_)));
    queue.replace(polled, after);
    beats
}

pub(crate) async fn scheduler_loop(
    scheduler: Scheduler,
    store: Arc<dyn TargetStore>,
    clock: Arc<dyn Clock>,
    targets_changed: Arc<Notify>,
    reload_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let reload_every =
        chrono::Duration::from_std(reload_every).unwrap_or(chrono::Duration::minutes(1));
    let (targets, mut token) = load_targets(store.as_ref()).await;
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
    // Each wake-up costs work for the targets due then, not for every target.
    let mut queue = DueQueue::new();
    let mut beats = split_targets(targets, &mut queue, after);
    // Read again only once passed (or after a reload): pings only move deadlines later.
    let mut heartbeat_deadline = next_heartbeat_deadline(&scheduler, &beats, start).await;
    // The periodic reread runs beside the loop: at 100,000 targets it holds the store for about
    // a second, and dispatching waited for it (scheduling lag p99 of 1 s in `scripts/bench`).
    let mut reloading: Option<JoinHandle<Result<Reread, StoreError>>> = None;
    loop {
        let next = queue
            .next_due()
            .into_iter()
            .chain(heartbeat_deadline)
            .min()
            .unwrap_or(after + chrono::Duration::seconds(60))
            .min(after + chrono::Duration::seconds(60));
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = targets_changed.notified() => {
                // A reread already under way may predate the change.
                if let Some(stale) = reloading.take() {
                    stale.abort();
                }
                let (targets, read_token) = load_targets(store.as_ref()).await;
                token = read_token;
                beats = split_targets(targets, &mut queue, after);
                loaded_at = clock.now();
                heartbeat_deadline = next_heartbeat_deadline(&scheduler, &beats, loaded_at).await;
                continue;
            }
            Some(reread) = finished(&mut reloading) => {
                reloading = None;
                match reread {
                    Ok(Ok(Reread::Unchanged)) => {}
                    Ok(Ok(Reread::Read(targets, read_token))) => {
                        token = read_token;
                        beats = split_targets(targets, &mut queue, after);
                        heartbeat_deadline =
                            next_heartbeat_deadline(&scheduler, &beats, clock.now()).await;
                    }
                    // The targets already queued keep being probed.
                    Ok(Err(e)) => error!(error = %e, "cannot reread targets; keeping the loaded ones"),
                    Err(e) => error!(error = %e, "target reread task failed; keeping the loaded ones"),
                }
                continue;
            }
            _ = stopped(&mut shutdown) => {
                if let Some(reread) = reloading.take() {
                    reread.abort();
                }
                return;
            }
        }
        let now = clock.now();
        if now <= after {
            continue;
        }
        if now - loaded_at >= reload_every && reloading.is_none() {
            let store = store.clone();
            reloading = Some(tokio::spawn(reread(store, token)));
            loaded_at = now;
        }
        let due = queue.take_due(now);
        match scheduler.enqueue_due(due, &beats, after, now).await {
            Ok(report) if report.jobs > 0 || report.missed_heartbeats > 0 => {
                tracing::debug!(?report, "scheduled");
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "scheduling round failed"),
        }
        after = now;
        if heartbeat_deadline.is_none_or(|d| d <= now) {
            heartbeat_deadline = next_heartbeat_deadline(&scheduler, &beats, now).await;
        }
    }
}

/// What a periodic reread found.
enum Reread {
    /// The store's token still matches the last read's: nothing to reread.
    Unchanged,
    /// The targets, and the token read just before them.
    Read(Vec<Target>, Option<u64>),
}

/// Rereads the targets unless the store can tell nothing changed since `last` (at 100,000
/// targets a reread is about a second of CPU on this machine, every minute, for nothing).
async fn reread(store: Arc<dyn TargetStore>, last: Option<u64>) -> Result<Reread, StoreError> {
    let token = store.targets_token().await?;
    if token.is_some() && token == last {
        return Ok(Reread::Unchanged);
    }
    Ok(Reread::Read(store.all_targets().await?, token))
}

async fn targets_token(store: &dyn TargetStore) -> Option<u64> {
    store.targets_token().await.unwrap_or_else(|e| {
        warn!(error = %e, "cannot tell whether targets changed; the next reread reads them all");
        None
    })
}

/// The reread's outcome once it is done; never, while none runs.
async fn finished<T>(task: &mut Option<JoinHandle<T>>) -> Option<Result<T, JoinError>> {
    match task {
        Some(task) => Some(task.await),
        None => std::future::pending().await,
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

/// Rolls up settled hours, then prunes, at start (catching up on hours missed while stopped)
/// and then each hour just after the previous one settled. Both work in short batches on the
/// store's thread, so the pipeline's writes interleave with them.
pub(crate) async fn history_loop(
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
    keep: Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = clock.now();
        match store.roll_up(now).await {
            Ok(r) if r.hours > 0 => tracing::debug!(?r, "history rolled up"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "history rollup failed"),
        }
        match store.prune_history(now, keep).await {
            Ok(p) => tracing::debug!(?p, "history pruned"),
            Err(e) => warn!(error = %e, "history pruning failed"),
        }
        let next = Granularity::Hour.floor(clock.now()) + chrono::Duration::hours(1) + SETTLE;
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_core::events::Envelope;
    use netmon_core::ports::{
        EventBus, Expect, HeartbeatStore, Page, PageRequest, PingRecord, StoreError,
    };
    use netmon_core::{TargetId, TenantId};
    use netmon_testkit::clock::ManualClock;
    use netmon_testkit::suites::fixtures;
    use std::sync::Mutex;

    /// Targets to schedule, and the probes enqueued for them as (target, due instant).
    #[derive(Default)]
    struct Fixed {
        targets: Mutex<Vec<Target>>,
        probes: Mutex<Vec<(String, DateTime<Utc>)>>,
        /// Held for writing, it stalls `all_targets` (a slow store).
        reads: tokio::sync::RwLock<()>,
        /// `all_targets` calls.
        rereads: std::sync::atomic::AtomicUsize,
        /// What `targets_token` answers (`None`: cannot tell).
        token: Mutex<Option<u64>>,
        /// `all_targets` fails while set.
        failing: std::sync::atomic::AtomicBool,
    }

    impl Fixed {
        fn take_probes(&self) -> Vec<(String, DateTime<Utc>)> {
            std::mem::take(&mut *self.probes.lock().unwrap())
        }
    }

    #[async_trait::async_trait]
    impl TargetStore for Fixed {
        async fn get_target(
            &self,
            _: &TenantId,
            _: &TargetId,
        ) -> Result<Option<Target>, StoreError> {
            Ok(None)
        }
        async fn list_targets(
            &self,
            _: &TenantId,
            _: PageRequest,
        ) -> Result<Page<Target>, StoreError> {
            Ok(Page {
                items: Vec::new(),
                next: None,
            })
        }
        async fn all_targets(&self) -> Result<Vec<Target>, StoreError> {
            let _open = self.reads.read().await;
            self.rereads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Unavailable("the store is down".into()));
            }
            Ok(self.targets.lock().unwrap().clone())
        }
        async fn targets_token(&self) -> Result<Option<u64>, StoreError> {
            Ok(*self.token.lock().unwrap())
        }
        async fn put_target(&self, target: Target, _: Expect) -> Result<Target, StoreError> {
            Ok(target)
        }
        async fn delete_target(&self, _: &TenantId, _: &TargetId) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    #[async_trait::async_trait]
    impl JobQueue for Fixed {
        async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
            let mut probes = self.probes.lock().unwrap();
            for job in jobs {
                for t in &job.targets {
                    probes.push((t.id.to_string(), job.scheduled_for));
                }
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl HeartbeatStore for Fixed {
        async fn record_ping(&self, _: &PingRecord) -> Result<(), StoreError> {
            Ok(())
        }
        async fn last_pings(&self) -> Result<Vec<PingRecord>, StoreError> {
            Ok(Vec::new())
        }
    }

    #[async_trait::async_trait]
    impl EventBus for Fixed {
        async fn publish(&self, _: Vec<Envelope>) -> Result<(), BusError> {
            Ok(())
        }
    }

    fn http(id: &str, interval_s: u64) -> Target {
        let mut t = fixtures::target(&TenantId::default_tenant(), id, id);
        t.spec.interval = serde_json::from_value(serde_json::json!(interval_s)).unwrap();
        t
    }

    /// Lets the loop (on this current-thread runtime) run until it sleeps again: every port
    /// here answers at once.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    struct Running {
        fixed: Arc<Fixed>,
        clock: Arc<ManualClock>,
        changed: Arc<Notify>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn run(targets: Vec<Target>) -> Running {
        // No periodic reread inside the measured windows.
        run_rereading(targets, Duration::from_secs(3_600)).await
    }

    async fn run_rereading(targets: Vec<Target>, reread: Duration) -> Running {
        run_over(
            Fixed {
                targets: Mutex::new(targets),
                ..Fixed::default()
            },
            reread,
        )
        .await
    }

    async fn run_over(fixed: Fixed, reread: Duration) -> Running {
        let fixed = Arc::new(fixed);
        let clock = Arc::new(ManualClock::at_fixed_start());
        let changed = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let scheduler = Scheduler::new(fixed.clone(), fixed.clone(), fixed.clone(), 50);
        let task = tokio::spawn(scheduler_loop(
            scheduler,
            fixed.clone(),
            clock.clone(),
            changed.clone(),
            reread,
            stop_rx,
        ));
        settle().await;
        Running {
            fixed,
            clock,
            changed,
            stop,
            task,
        }
    }

    impl Running {
        async fn stop(self) {
            let _ = self.stop.send(true);
            self.task.await.unwrap();
        }
    }

    /// Due-time evaluations on each 100 ms step of two minutes, and the probes enqueued, with
    /// ten 10 s targets and `idle` daily targets none of which is due in those two minutes.
    async fn evaluations_per_step(idle: usize) -> (Vec<u64>, Vec<(String, DateTime<Utc>)>) {
        let start = ManualClock::at_fixed_start().now();
        let end = start + chrono::Duration::seconds(121);
        let mut targets: Vec<Target> = (0..10).map(|i| http(&format!("busy{i}"), 10)).collect();
        targets.extend(
            (0..)
                .map(|i| http(&format!("idle{i}"), 86_400))
                .filter(|t| schedule::next_due(t, start) > end)
                .take(idle),
        );
        let running = run(targets).await;
        assert_eq!(
            running.fixed.take_probes().len(),
            10 + idle,
            "all probed at start"
        );
        let mut per_step = Vec::new();
        for _ in 0..1_200 {
            let before = schedule::due_evaluations();
            running.clock.advance(Duration::from_millis(100));
            settle().await;
            per_step.push(schedule::due_evaluations() - before);
        }
        let probes = running.fixed.take_probes();
        running.stop().await;
        (per_step, probes)
    }

    /// The scheduler's work per wake-up follows the targets due then: ten due targets among
    /// 10 or among 10,000 cost the same due-time evaluations on every step (one per probe).
    /// Recomputing every target's next instant on each wake-up (the loop before the due
    /// queue) made the 10,000-target run evaluate about 20,000 instants per wake-up.
    #[tokio::test]
    async fn work_per_wake_up_does_not_grow_with_targets_not_due() {
        let (few, few_probes) = evaluations_per_step(0).await;
        let (many, many_probes) = evaluations_per_step(9_990).await;
        assert_eq!(few_probes.len(), 120, "ten 10 s targets over two minutes");
        assert_eq!(few_probes, many_probes);
        assert_eq!(
            few.iter().sum::<u64>(),
            many.iter().sum::<u64>(),
            "due-time evaluations over two minutes, 10 vs 10,000 targets"
        );
        assert_eq!(few, many, "the same work on every step");
        assert_eq!(few.iter().sum::<u64>(), 120, "one evaluation per probe");
    }

    /// Targets created, re-timed and deleted while running are picked up when told, and are
    /// probed at their own due instants.
    #[tokio::test]
    async fn target_changes_reach_the_schedule() {
        let running = run(vec![http("kept", 60), http("gone", 10)]).await;
        running.fixed.take_probes();
        let added = http("added", 10);
        let mut retimed = http("kept", 10);
        retimed.version = 2;
        *running.fixed.targets.lock().unwrap() = vec![retimed.clone(), added.clone()];
        running.changed.notify_one();
        settle().await;
        let start = running.clock.now();
        for _ in 0..600 {
            running.clock.advance(Duration::from_millis(100));
            settle().await;
        }
        let probes = running.fixed.take_probes();
        let of = |id: &str| -> Vec<DateTime<Utc>> {
            probes
                .iter()
                .filter(|(t, _)| t == id)
                .map(|(_, at)| *at)
                .collect()
        };
        assert!(of("gone").is_empty(), "{probes:?}");
        for t in [&retimed, &added] {
            let mut want = Vec::new();
            let mut at = start;
            while schedule::next_due(t, at) <= running.clock.now() {
                at = schedule::next_due(t, at);
                want.push(at);
            }
            assert_eq!(of(t.id().as_str()), want);
            assert_eq!(want.len(), 6);
        }
        running.stop().await;
    }

    /// The periodic reread of every target runs beside dispatching: a store that takes its
    /// time (a second at 100,000 targets) delays no probe, and what it read is applied when it
    /// lands. The loop used to await the reread, so nothing was probed while it hung.
    #[tokio::test]
    async fn a_slow_reread_delays_no_probe() {
        let running = run_rereading(vec![http("a", 10)], Duration::from_secs(1)).await;
        running.fixed.take_probes();
        let hold = running.fixed.reads.write().await;
        for _ in 0..600 {
            running.clock.advance(Duration::from_millis(100));
            settle().await;
        }
        let held = running.fixed.take_probes();
        assert_eq!(
            held.len(),
            6,
            "a 10 s target over a minute of stalled rereads: {held:?}"
        );
        running.fixed.targets.lock().unwrap().push(http("b", 10));
        drop(hold);
        settle().await;
        for _ in 0..100 {
            running.clock.advance(Duration::from_millis(100));
            settle().await;
        }
        let after = running.fixed.take_probes();
        assert!(
            after.iter().any(|(t, _)| t == "b"),
            "the reread landed: {after:?}"
        );
        running.stop().await;
    }

    /// The periodic reread is skipped while the store's token says nothing changed, and runs
    /// once it moves; a store that cannot tell (no token) is reread every time, as before.
    #[tokio::test]
    async fn rereads_only_when_the_targets_token_moves() {
        use std::sync::atomic::Ordering::SeqCst;
        let running = run_rereading(vec![http("a", 10)], Duration::from_secs(1)).await;
        let minute = async || {
            for _ in 0..600 {
                running.clock.advance(Duration::from_millis(100));
                settle().await;
            }
        };
        // No token: every second.
        let before = running.fixed.rereads.load(SeqCst);
        minute().await;
        let untold = running.fixed.rereads.load(SeqCst) - before;
        // (The loop looks at the reread clock when it wakes: each 10 s here.)
        assert!(untold >= 5, "rereads a minute without a token: {untold}");
        // A token that stays: none after the one that records it.
        *running.fixed.token.lock().unwrap() = Some(7);
        minute().await;
        let before = running.fixed.rereads.load(SeqCst);
        minute().await;
        assert_eq!(running.fixed.rereads.load(SeqCst) - before, 0);
        // The token moves with a change: read once, and the new target is probed.
        running.fixed.targets.lock().unwrap().push(http("b", 10));
        *running.fixed.token.lock().unwrap() = Some(8);
        running.fixed.take_probes();
        minute().await;
        assert_eq!(running.fixed.rereads.load(SeqCst) - before, 1);
        let probed = running.fixed.take_probes();
        assert!(probed.iter().any(|(t, _)| t == "b"), "{probed:?}");
        running.stop().await;
    }

    /// A first read that fails leaves no token behind, so the periodic reread is not skipped
    /// (the store's token did not move, but what the scheduler holds is nothing).
    #[tokio::test]
    async fn a_failed_first_read_is_reread_whatever_the_token() {
        use std::sync::atomic::Ordering::SeqCst;
        let fixed = Fixed {
            targets: Mutex::new(vec![http("a", 10)]),
            token: Mutex::new(Some(7)),
            failing: true.into(),
            ..Fixed::default()
        };
        let running = run_over(fixed, Duration::from_secs(1)).await;
        running.fixed.failing.store(false, SeqCst);
        // With nothing queued the loop wakes once a minute, and rereads then.
        for _ in 0..900 {
            running.clock.advance(Duration::from_millis(100));
            settle().await;
        }
        let probed = running.fixed.take_probes();
        assert!(probed.iter().any(|(t, _)| t == "a"), "{probed:?}");
        running.stop().await;
    }
}
