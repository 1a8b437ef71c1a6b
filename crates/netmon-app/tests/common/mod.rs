//! Harness: the whole embedded pipeline on a manual clock, a switchable local target and a
//! webhook receiver, with every bus event captured for contract checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netmon_app::config::{self, Config};
use netmon_app::delivery::MemorySink;
use netmon_app::embedded::{self, Options, Running};
use netmon_core::events::Envelope;
use netmon_embedded::{EventFilter, MemoryBus, spawn_consumer};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::servers::{TargetServer, WebhookReceiver};

pub const WAIT: Duration = Duration::from_secs(20);

pub fn temp_store(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("netmon-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("netmon.db")
}

pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub target: TargetServer,
    pub hook: WebhookReceiver,
    pub store: PathBuf,
    pub events: Arc<Mutex<Vec<Envelope>>>,
    pub log: Arc<MemorySink>,
    pub running: Option<Running>,
    yaml: String,
}

impl Harness {
    /// `targets_yaml` is the `targets:` list; `{target}` and `{hook}` are replaced with URLs.
    pub async fn new(name: &str, targets_yaml: &str) -> Self {
        let target = TargetServer::start().await;
        let hook = WebhookReceiver::start().await;
        let store = temp_store(name);
        let yaml = format!(
            "location: test\nlisten: 127.0.0.1:0\nstore: {store}\nchannels:\n  - id: hook\n    webhook: {{url: '{hook}'}}\n  - id: console\n    log: {{}}\ntargets:\n{targets}",
            store = store.display(),
            hook = hook.url(),
            targets = targets_yaml.replace("{target}", &target.url()),
        );
        Self {
            clock: Arc::new(ManualClock::at_fixed_start()),
            target,
            hook,
            store,
            events: Arc::new(Mutex::new(Vec::new())),
            log: Arc::new(MemorySink::default()),
            running: None,
            yaml,
        }
    }

    pub fn config(&self) -> Config {
        config::parse(&self.yaml, "test.yaml", Path::new("/")).expect("test config parses")
    }

    pub async fn start(&mut self) {
        let bus = MemoryBus::new();
        let events = self.events.clone();
        // Captures every event any handler publishes, for the contract checks.
        spawn_consumer(
            bus.subscribe("tap", EventFilter::All, 1024),
            1,
            move |env: Envelope| {
                events.lock().unwrap().push(env);
                async { Ok(()) }
            },
        );
        let mut opts = Options::new(self.config());
        opts.clock = self.clock.clone();
        opts.log_sink = self.log.clone();
        opts.delivery_timeout = Duration::from_secs(2);
        opts.bus = Some(bus);
        self.running = Some(embedded::start(opts).await.expect("pipeline starts"));
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("started")
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(r) = self.running.take() {
            r.kill();
        }
    }

    /// Moves the clock one interval on and waits until the probe job it triggers is handled
    /// (results applied to state and history).
    pub async fn round(&self, jobs_before: &mut u64) {
        self.clock.advance(Duration::from_secs(60));
        *jobs_before += 1;
        self.running()
            .wait_jobs(*jobs_before, WAIT)
            .await
            .expect("probe round completes");
    }

    pub fn captured(&self) -> Vec<Envelope> {
        self.events.lock().unwrap().clone()
    }
}
