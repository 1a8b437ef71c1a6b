//! Harness: the whole embedded pipeline on a manual clock, a switchable local target and a
//! webhook receiver, with every bus event captured for contract checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netmon_app::delivery::MemorySink;
use netmon_core::events::Envelope;
use netmon_embedded::{EventFilter, MemoryBus, spawn_consumer};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::servers::{TargetServer, WebhookReceiver};
use netmon_up::config::{self, Config};
use netmon_up::{Options, Running};

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
    /// The state-change lines `netmon up` prints.
    pub console: Arc<MemorySink>,
    pub running: Option<Running>,
    /// Overrides the longest "check now" wait.
    pub check_timeout: Option<Duration>,
    yaml: String,
}

impl Harness {
    /// `targets_yaml` is the `targets:` list; `{target}` and `{hook}` are replaced with URLs.
    pub async fn new(name: &str, targets_yaml: &str) -> Self {
        Self::with_settings(name, "", targets_yaml).await
    }

    /// As [`Harness::new`], with top-level config keys (`api: …`) ahead of the lists.
    pub async fn with_settings(name: &str, settings_yaml: &str, targets_yaml: &str) -> Self {
        let target = TargetServer::start().await;
        let hook = WebhookReceiver::start().await;
        let store = temp_store(name);
        let yaml = format!(
            "location: test\nlisten: 127.0.0.1:0\nstore: {store}\n{settings_yaml}channels:\n  - id: hook\n    webhook: {{url: '{hook}'}}\n  - id: console\n    log: {{}}\ntargets:\n{targets}",
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
            console: Arc::new(MemorySink::default()),
            running: None,
            check_timeout: None,
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
            move |env: Arc<Envelope>| {
                events.lock().unwrap().push(Envelope::clone(&env));
                async { Ok(()) }
            },
        );
        let mut opts = Options::new(self.config());
        opts.clock = self.clock.clone();
        opts.log_sink = self.log.clone();
        opts.console = self.console.clone();
        opts.delivery_timeout = Duration::from_secs(2);
        opts.bus = Some(bus);
        if let Some(t) = self.check_timeout {
            opts.check_timeout = t;
        }
        self.running = Some(netmon_up::start(opts).await.expect("pipeline starts"));
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

    /// A client acting with the admin key created on first start.
    pub fn api(&self) -> Api {
        Api::new(
            &format!("http://{}", self.running().api_addr()),
            self.running().initial_admin_key().map(str::to_owned),
        )
    }

    pub fn captured(&self) -> Vec<Envelope> {
        self.events.lock().unwrap().clone()
    }
}

/// A small HTTP client for the API: every call returns status, content type and JSON body.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: Option<String>,
    client: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub ctype: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

impl Api {
    pub fn new(base: &str, key: Option<String>) -> Self {
        Self {
            base: base.to_owned(),
            key,
            // Raw answers: a redirect is asserted as such, not followed.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
        }
    }

    pub fn with_key(&self, key: Option<&str>) -> Self {
        Self {
            key: key.map(str::to_owned),
            ..self.clone()
        }
    }

    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let ctype = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            ctype,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.raw(reqwest::Method::GET, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.raw(reqwest::Method::POST, path, Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: &str) -> Reply {
        self.raw(reqwest::Method::PUT, path, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.raw(reqwest::Method::DELETE, path, None, &[]).await
    }

    /// Creates a key for `tenant` with this client's (admin) key and returns a client using it.
    pub async fn tenant_client(&self, tenant: &str, role: &str) -> Api {
        let r = self
            .post(
                "/v1/keys",
                &serde_json::json!({"name": format!("{tenant} {role}"), "tenant": tenant, "role": role})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        self.with_key(r.json["key"].as_str())
    }
}

/// Asserts that `body` matches the schema `/openapi.json` documents for this response.
pub fn conforms(
    doc: &serde_json::Value,
    path: &str,
    verb: &str,
    status: u16,
    body: &serde_json::Value,
) {
    let resp = &doc["paths"][path][verb]["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "{verb} {path} does not document status {status}"
    );
    let schema = resp["content"]
        .as_object()
        .and_then(|c| c.values().next())
        .map(|m| m["schema"].clone())
        .unwrap_or_else(|| panic!("{verb} {path} {status} documents no body"));
    let wrapped = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": doc["components"]["schemas"],
        "allOf": [schema],
    });
    let text = wrapped
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{verb} {path} {status}: the body does not match its documented schema: {errors:?}\n{body:#}"
    );
}
