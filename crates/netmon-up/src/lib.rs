//! The single-process host behind `netmon up`: loads the config into the embedded SQLite store,
//! wires every service of `netmon-app` to it, to the in-memory bus and to the probe engine, and
//! runs the background loops (scheduler, probe workers, outbox relay, history pruning) and the
//! API. The services are the same ones the Lambdas run; only the adapters differ.
//!
//! May depend on: `netmon-core`, `netmon-app`, and the adapters `netmon-embedded` and
//! `netmon-probe`. Nothing depends on it but the `netmon` command and tests.

pub mod config;
mod console;
mod loops;
mod serve;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netmon_app::clock::SystemClock;
use netmon_app::delivery::{ChannelDelivery, StdoutSink};
use netmon_app::error::HandleError;
use netmon_app::http::ApiContext;
use netmon_app::http::live::{LiveHub, LiveLimits};
use netmon_app::rpc::InProcessRpc;
use netmon_app::services::alerter::{Alerter, RelayMode};
use netmon_app::services::notifier::Notifier;
use netmon_app::services::prober::ProberService;
use netmon_app::services::recorder::Recorder;
use netmon_app::services::relay::OutboxRelay;
use netmon_app::services::scheduler::Scheduler;
use netmon_core::events::{Envelope, EventType};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{ApiKeyStore, Clock, Deliver, EventBus, LineSink};
use netmon_embedded::{EventFilter, MemoryBus, Retention, SqliteStore, spawn_consumer};
use netmon_probe::{ProbeConfig, Prober, Resolver, SystemResolver};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;
use crate::loops::{ChannelJobQueue, history_loop, probe_workers, scheduler_loop};
pub use crate::serve::ServerLimits;
pub use crate::sync::{apply_config, ensure_admin_key};

pub struct Options {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub resolver: Arc<dyn Resolver>,
    pub log_sink: Arc<dyn LineSink>,
    /// Where the state-change lines go (stderr by default; stdout carries the first admin key,
    /// the sign-in link and log channels).
    pub console: Arc<dyn LineSink>,
    /// How often undelivered notifications are retried.
    pub relay_retry: Duration,
    /// How often the scheduler rereads all targets (it also reloads on every change event).
    pub target_reload: Duration,
    pub delivery_timeout: Duration,
    /// Targets per probe job.
    pub shard_size: usize,
    /// Hourly rollups (and notification records) older than this are pruned hourly.
    pub history_retention: chrono::Duration,
    /// Raw results older than this are pruned once their hours are rolled up; at least
    /// [`MIN_RAW_RETENTION`]. From the config file's `history.raw_retention`.
    pub raw_retention: chrono::Duration,
    /// The bus to use; pass one to subscribe observers before anything is published.
    pub bus: Option<MemoryBus>,
    /// Longest a "check now" waits (each waits its target's timeout plus 5 s, up to this).
    pub check_timeout: Duration,
}

impl Options {
    pub fn new(config: Config) -> Self {
        Self {
            raw_retention: config.history.raw_retention.as_chrono(),
            config,
            clock: Arc::new(SystemClock),
            resolver: Arc::new(SystemResolver),
            log_sink: Arc::new(StdoutSink),
            console: Arc::new(console::StderrSink),
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
    #[error(
        "raw_retention is {0}; it must be at least 2h, so an hour is rolled up before its raw results go"
    )]
    RawRetention(String),
}

/// The shortest raw retention: an hour must settle and be rolled up before its raw results go.
pub const MIN_RAW_RETENTION: chrono::Duration = chrono::Duration::hours(2);

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
    api: Arc<ApiContext>,
    live: Arc<LiveHub>,
    public_url: Option<url::Url>,
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

    /// Where a browser reaches this process: the config's `public_url`, else the listening
    /// address (loopback when listening on every interface). Ends with `/`.
    pub fn base_url(&self) -> String {
        if let Some(u) = &self.public_url {
            let s = u.as_str();
            return if s.ends_with('/') {
                s.to_owned()
            } else {
                format!("{s}/")
            };
        }
        let mut addr = self.api_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{addr}/")
    }

    /// The dashboard's address with a one-time sign-in token for the first active admin key of
    /// the config's tenant, usable once within 15 minutes; `None` without such a key.
    pub async fn sign_in_link(&self) -> Option<String> {
        let keys = self
            .store
            .list_keys(Some(&self.api.tenant))
            .await
            .map_err(|e| warn!(error = %e, "no sign-in link: keys not read"))
            .ok()?;
        let key = keys
            .iter()
            .find(|k| k.role == netmon_core::apikey::Role::Admin && k.is_active())?;
        let token = self
            .api
            .sessions
            .one_time_token(&key.id, self.api.clock.now());
        Some(format!("{}signin?once={token}", self.base_url()))
    }

    /// The dashboard's live feed (for tests: its open connections).
    pub fn live(&self) -> &Arc<LiveHub> {
        &self.live
    }

    pub fn store(&self) -> Arc<SqliteStore> {
        self.store.clone()
    }

    pub fn bus(&self) -> &MemoryBus {
        &self.bus
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
        // Live streams never end by themselves; the graceful shutdown would wait for them.
        self.live.close_all();
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

fn handler_result<T>(r: Result<T, HandleError>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

pub async fn start(opts: Options) -> Result<Running, StartError> {
    let Options {
        config,
        clock,
        resolver,
        log_sink,
        console,
        relay_retry,
        target_reload,
        delivery_timeout,
        shard_size,
        history_retention,
        raw_retention,
        bus,
        check_timeout,
    } = opts;
    if raw_retention < MIN_RAW_RETENTION {
        return Err(StartError::RawRetention(format!(
            "{}s",
            raw_retention.num_seconds()
        )));
    }

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

    // The SSRF policy of this deployment: the config's `probe` settings, for probes and webhooks.
    let probe_config = ProbeConfig::new(config.probe.allow_private, config.probe.allow_link_local);
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
    // Email channels speak SMTP to their servers, behind the same guard as probes.
    let mailer = netmon_probe::smtp::SmtpMailer::new(prober.clone(), delivery_timeout)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let mut delivery = ChannelDelivery::new(prober.clone(), log_sink, delivery_timeout)
        .with_mailer(Arc::new(mailer));
    if let Some(base) = &config.public_url {
        delivery = delivery.with_link(base.clone());
    }
    let delivery: Arc<dyn Deliver> = Arc::new(delivery);
    let notifier = Arc::new(
        Notifier::new(
            store.clone(),
            store.clone(),
            store.clone(),
            delivery.clone(),
            clock.clone(),
        )
        .with_notification_log(store.clone()),
    );

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    // Subscribe every consumer before anything can publish.
    tasks.push(spawn_consumer(
        bus.subscribe("alerter", EventType::ProbeCompleted, 64),
        4,
        move |env: Arc<Envelope>| {
            let alerter = alerter.clone();
            async move { handler_result(alerter.handle(&env).await) }
        },
    ));
    tasks.push(spawn_consumer(
        bus.subscribe("recorder", EventType::ProbeCompleted, 64),
        2,
        move |env: Arc<Envelope>| {
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
        move |env: Arc<Envelope>| {
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
            move |_env: Arc<Envelope>| {
                changed.notify_one();
                async { Ok(()) }
            },
        ));
    }

    // The dashboard's browsers: one more subscriber, which never makes the pipeline wait
    // (`LiveHub::publish` only hands events to bounded per-browser buffers).
    let live = LiveHub::new(LiveLimits::default());
    {
        let live = live.clone();
        tasks.push(spawn_consumer(
            bus.subscribe(
                "dashboard",
                EventFilter::Matching(|t| t != EventType::ChannelTest),
                256,
            ),
            1,
            move |env: Arc<Envelope>| {
                live.publish(&env);
                async { Ok(()) }
            },
        ));
    }

    // One readable line per state change on the console.
    {
        let sink = console;
        let console = Arc::new(std::sync::Mutex::new(console::Console::default()));
        tasks.push(spawn_consumer(
            bus.subscribe(
                "console",
                [
                    EventType::ProbeCompleted,
                    EventType::IncidentOpened,
                    EventType::IncidentResolved,
                ],
                256,
            ),
            1,
            move |env: Arc<Envelope>| {
                let lines = console
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .lines(&env);
                for l in lines {
                    sink.line(&l);
                }
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
            move |env: Arc<Envelope>| {
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
    tasks.push(tokio::spawn(history_loop(
        store.clone(),
        clock.clone(),
        Retention {
            raw: raw_retention,
            history: history_retention,
        },
        shutdown_rx.clone(),
    )));

    let api_ctx = ApiContext::builder(
        store.clone(),
        store.clone(),
        bus_port.clone(),
        clock.clone(),
        config.tenant.clone(),
    )
    .rpc(rpc)
    .delivery(delivery)
    .check_timeout(check_timeout)
    .rate_limits(config.api.rate_limit)
    .live(live.clone())
    .public_url(config.public_url.as_ref().map(|u| u.to_string()))
    .build();
    let api = netmon_app::api::router(api_ctx.clone());
    tasks.push(tokio::spawn(serve::serve(
        listener,
        api,
        config.api.server,
        shutdown_rx.clone(),
    )));

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
        api: api_ctx,
        live,
        public_url: config.public_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_raw_retention_under_two_hours_is_refused_before_anything_starts() {
        let config = config::parse(
            "store: /nonexistent/netmon.db\n",
            "t.yaml",
            std::path::Path::new("/"),
        )
        .expect("config");
        let mut opts = Options::new(config);
        assert_eq!(opts.raw_retention, chrono::Duration::hours(48));
        opts.raw_retention = chrono::Duration::minutes(90);
        let e = start(opts).await.err().expect("refused");
        assert!(matches!(e, StartError::RawRetention(_)), "{e}");
        assert!(e.to_string().contains("at least 2h"), "{e}");
    }
}
