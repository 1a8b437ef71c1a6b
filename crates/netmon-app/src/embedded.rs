//! `netmon up`: every handler in one process, wired to the embedded SQLite store and the
//! in-memory bus. The handlers are the same ones the Lambdas run; only the adapters differ.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_core::TenantId;
use netmon_core::apikey::Role;
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::events::{Envelope, EventType};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{
    ApiKeyStore, BusError, ChannelStore, Clock, EventBus, Expect, JobQueue, StoreError, TargetStore,
};
use netmon_core::rpc::{RpcOutcome, RpcReply};
use netmon_core::target::{CheckSpec, Target, TargetSpec};
use netmon_embedded::{EventFilter, MemoryBus, SqliteStore, spawn_consumer};
use netmon_probe::{ProbeConfig, Prober, Resolver, SystemResolver};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::limit::RateLimiter;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::delivery::{ChannelDelivery, LineSink, StdoutSink};
use crate::error::HandleError;
use crate::rpc::InProcessRpc;
use crate::schedule;
use crate::services::alerter::{Alerter, RelayMode};
use crate::services::notifier::Notifier;
use crate::services::prober::ProberService;
use crate::services::recorder::Recorder;
use crate::services::relay::OutboxRelay;
use crate::services::scheduler::Scheduler;

pub struct Options {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub resolver: Arc<dyn Resolver>,
    pub log_sink: Arc<dyn LineSink>,
    /// How often undelivered notifications are retried.
    pub relay_retry: Duration,
    /// How often the scheduler rereads all targets (it also reloads on every change event).
    pub target_reload: Duration,
    pub delivery_timeout: Duration,
    /// Targets per probe job.
    pub shard_size: usize,
    /// History older than this is pruned hourly, bounding the database size.
    pub history_retention: chrono::Duration,
    /// The bus to use; pass one to subscribe observers before anything is published.
    pub bus: Option<MemoryBus>,
    /// Longest a "check now" waits (each waits its target's timeout plus 5 s, up to this).
    pub check_timeout: Duration,
}

impl Options {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
            resolver: Arc::new(SystemResolver),
            log_sink: Arc::new(StdoutSink),
            relay_retry: Duration::from_secs(10),
            target_reload: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(10),
            shard_size: 50,
            history_retention: chrono::Duration::days(90),
            bus: None,
            check_timeout: Duration::from_secs(70),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("cannot load the config into the store: {0}")]
    Apply(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot set up TLS for probes: {0}")]
    Tls(String),
}

/// A running process. Dropping it without `stop` aborts the tasks.
pub struct Running {
    api_addr: SocketAddr,
    store: Arc<SqliteStore>,
    bus: MemoryBus,
    shutdown: watch::Sender<bool>,
    jobs_done: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
    probe_tasks: Vec<JoinHandle<()>>,
    max_timeout: Duration,
    admin_key: Option<String>,
}

impl Running {
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The admin key created on this start because the store had none, to be shown once.
    /// `None` on every later start.
    pub fn initial_admin_key(&self) -> Option<&str> {
        self.admin_key.as_deref()
    }

    pub fn store(&self) -> Arc<SqliteStore> {
        self.store.clone()
    }

    pub fn bus(&self) -> &MemoryBus {
        &self.bus
    }

    /// Probe jobs completed (results published and handled) since start.
    pub fn jobs_done(&self) -> u64 {
        *self.jobs_done.borrow()
    }

    /// Waits until at least `n` probe jobs have completed.
    pub async fn wait_jobs(&self, n: u64, timeout: Duration) -> Result<(), String> {
        let mut rx = self.jobs_done.clone();
        tokio::time::timeout(timeout, rx.wait_for(|done| *done >= n))
            .await
            .map_err(|_| {
                format!(
                    "only {} of {n} probe jobs completed within {timeout:?}",
                    *self.jobs_done.borrow()
                )
            })?
            .map(|_| ())
            .map_err(|_| "the prober stopped".to_owned())
    }

    /// Stops at once without draining anything, as a crash or `kill -9` would: in-flight probes
    /// and deliveries are dropped mid-way. What was committed to the store survives.
    pub fn kill(self) {
        for task in self.probe_tasks.iter().chain(&self.tasks) {
            task.abort();
        }
        self.bus.shutdown();
    }

    /// Stops taking work, lets in-flight probes finish (each is bounded by its timeout), drains
    /// the bus and closes the store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let grace = self.max_timeout + Duration::from_secs(2);
        for task in self.probe_tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                warn!("probe work still running after {grace:?}; abandoning it");
                abort.abort();
            }
        }
        self.bus.shutdown();
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
        self.store.close().await;
    }
}

/// The API over `store` alone, without the pipeline: for tests and demos that serve pages and
/// CRUD routes. "Check now" and channel test sends answer that nothing runs them.
pub fn api_only_context(
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
    tenant: TenantId,
) -> crate::api::ApiContext {
    crate::api::ApiContext {
        targets: store.clone(),
        states: store.clone(),
        heartbeats: store.clone(),
        bus: Arc::new(MemoryBus::new()),
        clock,
        tenant,
        history: store.clone(),
        channels: store.clone(),
        keys: store.clone(),
        maintenance: store,
        rpc: Arc::new(InProcessRpc::new(Arc::new(NoProber))),
        delivery: Arc::new(NoDelivery),
        check_timeout: Duration::from_secs(15),
        limiter: RateLimiter::new(crate::api::limit::RateLimits::default()),
    }
}

struct NoProber;

#[async_trait::async_trait]
impl JobQueue for NoProber {
    async fn enqueue(&self, _jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        Err(BusError::Unavailable(
            "no prober runs in this process".into(),
        ))
    }
}

struct NoDelivery;

#[async_trait::async_trait]
impl crate::delivery::Deliver for NoDelivery {
    async fn deliver(
        &self,
        _channel: &netmon_core::channel::ChannelSpec,
        _env: &Envelope,
    ) -> Result<(), String> {
        Err("no notifier runs in this process".into())
    }
}

/// Job queue for one process: a bounded channel to the probe workers.
struct ChannelJobQueue(mpsc::Sender<ProbeJob>);

#[async_trait::async_trait]
impl JobQueue for ChannelJobQueue {
    async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        for job in jobs {
            self.0.send(job).await.map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }
}

fn handler_result<T>(r: Result<T, HandleError>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

pub async fn start(opts: Options) -> Result<Running, StartError> {
    let Options {
        config,
        clock,
        resolver,
        log_sink,
        relay_retry,
        target_reload,
        delivery_timeout,
        shard_size,
        history_retention,
        bus,
        check_timeout,
    } = opts;

    let store =
        Arc::new(
            SqliteStore::open(&config.store)
                .await
                .map_err(|e| StartError::Store {
                    path: config.store.display().to_string(),
                    reason: e.to_string(),
                })?,
        );
    apply_config(&store, &config, clock.now())
        .await
        .map_err(|e| StartError::Apply(e.to_string()))?;
    let admin_key = ensure_admin_key(store.as_ref(), &config.tenant, clock.now())
        .await
        .map_err(|e| StartError::Apply(format!("cannot create the first admin key: {e}")))?;

    let mut probe_config = ProbeConfig::embedded_default();
    probe_config.allow_private = config.probe.allow_private;
    probe_config.allow_link_local = config.probe.allow_link_local;
    let prober = Arc::new(
        Prober::try_new(probe_config, resolver).map_err(|e| StartError::Tls(e.to_string()))?,
    );

    // Bind first: a target that probes this API (a self-check) must find it listening.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen {
            addr: config.listen,
            reason: e.to_string(),
        })?;
    let api_addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: config.listen,
        reason: e.to_string(),
    })?;
    let bus = bus.unwrap_or_default();
    let bus_port: Arc<dyn EventBus> = Arc::new(bus.clone());
    let relay = Arc::new(OutboxRelay::new(store.clone(), bus_port.clone()));
    let alerter = Arc::new(
        Alerter::new(
            store.clone(),
            store.clone(),
            clock.clone(),
            relay.clone(),
            RelayMode::Background,
        )
        .with_maintenance(store.clone()),
    );
    let recorder = Arc::new(Recorder::new(store.clone()));
    let delivery: Arc<dyn crate::delivery::Deliver> = Arc::new(ChannelDelivery::new(
        prober.clone(),
        log_sink,
        delivery_timeout,
    ));
    let notifier = Arc::new(Notifier::new(
        store.clone(),
        store.clone(),
        store.clone(),
        delivery.clone(),
        clock.clone(),
    ));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    // Subscribe every consumer before anything can publish.
    tasks.push(spawn_consumer(
        bus.subscribe("alerter", EventType::ProbeCompleted, 64),
        4,
        move |env: Envelope| {
            let alerter = alerter.clone();
            async move { handler_result(alerter.handle(&env).await) }
        },
    ));
    tasks.push(spawn_consumer(
        bus.subscribe("recorder", EventType::ProbeCompleted, 64),
        2,
        move |env: Envelope| {
            let recorder = recorder.clone();
            async move { handler_result(recorder.handle(&env).await) }
        },
    ));
    tasks.push(spawn_consumer(
        bus.subscribe(
            "notifier",
            EventFilter::Matching(EventType::is_incident),
            64,
        ),
        4,
        move |env: Envelope| {
            let notifier = notifier.clone();
            async move { handler_result(notifier.handle(&env).await) }
        },
    ));
    let targets_changed = Arc::new(Notify::new());
    {
        let changed = targets_changed.clone();
        tasks.push(spawn_consumer(
            bus.subscribe(
                "scheduler",
                [
                    EventType::TargetCreated,
                    EventType::TargetUpdated,
                    EventType::TargetDeleted,
                ],
                16,
            ),
            1,
            move |_env: Envelope| {
                changed.notify_one();
                async { Ok(()) }
            },
        ));
    }

    // Probe workers.
    let (job_tx, job_rx) = mpsc::channel::<ProbeJob>(256);
    let rpc = Arc::new(InProcessRpc::new(Arc::new(ChannelJobQueue(job_tx.clone()))));
    {
        let (rpc, clock) = (rpc.clone(), clock.clone());
        tasks.push(spawn_consumer(
            bus.subscribe("rpc", EventType::ProbeCompleted, 64),
            1,
            move |env: Envelope| {
                rpc.observe(&env, clock.now());
                async { Ok(()) }
            },
        ));
    }
    let (jobs_done_tx, jobs_done) = watch::channel(0u64);
    let per_job = shard_size.min(config.probe.concurrency).max(1);
    let parallel_jobs = config.probe.concurrency.div_ceil(per_job).max(2);
    let prober_service = Arc::new(ProberService::new(
        prober.clone(),
        bus_port.clone(),
        clock.clone(),
        config.location.clone(),
        per_job,
    ));
    let probe_tasks = vec![tokio::spawn(probe_workers(
        job_rx,
        prober_service,
        parallel_jobs,
        jobs_done_tx,
        rpc.clone(),
        clock.clone(),
        shutdown_rx.clone(),
    ))];

    let scheduler = Scheduler::new(
        Arc::new(ChannelJobQueue(job_tx)),
        store.clone(),
        bus_port.clone(),
        shard_size,
    );
    tasks.push(tokio::spawn(scheduler_loop(
        scheduler,
        store.clone(),
        clock.clone(),
        targets_changed,
        target_reload,
        shutdown_rx.clone(),
    )));
    {
        let relay = relay.clone();
        let clock = clock.clone();
        let rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            relay.run(clock, relay_retry, rx).await;
        }));
    }
    tasks.push(tokio::spawn(prune_loop(
        store.clone(),
        clock.clone(),
        history_retention,
        shutdown_rx.clone(),
    )));

    let api = crate::api::router(Arc::new(crate::api::ApiContext {
        targets: store.clone(),
        states: store.clone(),
        heartbeats: store.clone(),
        bus: bus_port.clone(),
        clock: clock.clone(),
        tenant: config.tenant.clone(),
        channels: store.clone(),
        history: store.clone(),
        keys: store.clone(),
        maintenance: store.clone(),
        rpc,
        delivery,
        check_timeout,
        limiter: RateLimiter::new(config.api.rate_limit),
    }));
    {
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            // The peer address keys the per-IP rate limit of requests without a key.
            let serve = axum::serve(
                listener,
                api.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stopped(&mut rx).await });
            if let Err(e) = serve.await {
                error!(error = %e, "API server stopped");
            }
        }));
    }

    let max_timeout = config
        .targets
        .iter()
        .map(|t| t.timeout.as_duration())
        .max()
        .unwrap_or(Duration::from_secs(10))
        .max(delivery_timeout);
    info!(targets = config.targets.len(), %api_addr, store = %config.store.display(), "netmon is up");
    Ok(Running {
        api_addr,
        store,
        bus,
        shutdown,
        jobs_done,
        tasks,
        probe_tasks,
        max_timeout,
        admin_key: admin_key.map(|k| k.secret),
    })
}

/// Creates an admin key for `tenant` if the store has no active admin key (a fresh store, or
/// every admin key revoked). The secret is returned to be shown once, never logged.
pub async fn ensure_admin_key(
    store: &dyn ApiKeyStore,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Option<crate::auth::NewKey>, StoreError> {
    let keys = store.list_keys(None).await?;
    if keys.iter().any(|k| k.role == Role::Admin && k.is_active()) {
        return Ok(None);
    }
    let key = crate::auth::create(
        store,
        tenant.clone(),
        Role::Admin,
        "local admin (netmon up)",
        now,
    )
    .await?;
    info!(key = %key.record.id, tenant = %tenant, "created the first admin API key");
    Ok(Some(key))
}

/// Writes the config's channels and targets into the store: creates what is new, updates what
/// changed, leaves identical ones alone (no version bump on restart). Targets created through
/// the API are kept.
pub async fn apply_config(
    store: &SqliteStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tenant = &config.tenant;
    let existing_channels = store.list_channels(tenant).await?;
    for spec in &config.channels {
        let current = existing_channels.iter().find(|c| c.spec.id == spec.id);
        upsert_channel(store, tenant, spec, current, now).await?;
    }
    for spec in &config.targets {
        let current = store.get_target(tenant, &spec.id).await?;
        let mut spec = spec.clone();
        keep_generated_token(&mut spec, current.as_ref());
        match current {
            Some(t) if t.spec == spec => {}
            Some(t) => {
                store
                    .put_target(
                        Target {
                            tenant: tenant.clone(),
                            spec,
                            version: t.version,
                            created_at: t.created_at,
                            updated_at: now,
                        },
                        Expect::Version(t.version),
                    )
                    .await?;
            }
            None => {
                store
                    .put_target(
                        Target {
                            tenant: tenant.clone(),
                            spec,
                            version: 0,
                            created_at: now,
                            updated_at: now,
                        },
                        Expect::Absent,
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

async fn upsert_channel(
    store: &SqliteStore,
    tenant: &TenantId,
    spec: &ChannelSpec,
    current: Option<&Channel>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (expect, created_at) = match current {
        Some(c) if c.spec == *spec => return Ok(()),
        Some(c) => (Expect::Version(c.version), c.created_at),
        None => (Expect::Absent, now),
    };
    store
        .put_channel(
            Channel {
                tenant: tenant.clone(),
                spec: spec.clone(),
                version: 0,
                created_at,
                updated_at: now,
            },
            expect,
        )
        .await?;
    Ok(())
}

/// A heartbeat in the config without a token keeps the one generated on first start.
fn keep_generated_token(spec: &mut TargetSpec, current: Option<&Target>) {
    if let CheckSpec::Heartbeat(hb) = &mut spec.check
        && hb.token.is_none()
    {
        let old = current.and_then(|t| match &t.spec.check {
            CheckSpec::Heartbeat(h) => h.token.clone(),
            _ => None,
        });
        hb.token = Some(old.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()));
    }
}

async fn probe_workers(
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
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (service, done, rpc, clock) =
            (service.clone(), done.clone(), rpc.clone(), clock.clone());
        running.spawn(async move {
            match service.run_job(&job).await {
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
async fn stopped(rx: &mut watch::Receiver<bool>) {
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

async fn scheduler_loop(
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
    loop {
        let next = targets
            .iter()
            .filter(|t| schedule::is_polled(t))
            .map(|t| schedule::next_due(t, after))
            .min()
            .unwrap_or(after + chrono::Duration::seconds(60))
            .min(after + chrono::Duration::seconds(60));
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = targets_changed.notified() => {
                targets = load_targets(&store).await;
                loaded_at = clock.now();
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
    }
}

async fn prune_loop(
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
