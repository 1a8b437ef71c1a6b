//! A provisioned emulator stack with every function wired to it, as the binaries wire them, and
//! a call counter per function.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::SdkConfig;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::{ENV_ALLOW_PRIVATE, ENV_LOCATION, ENV_PUBLIC_URL, ENV_SES_IDENTITY};
use netmon_core::TenantId;
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::ports::{ChannelStore, Expect, TargetStore};
use netmon_core::target::{Target, TargetSpec};
use netmon_lambda::env::Env;
use netmon_lambda::functions::alerter::{AlerterConfig, AlerterFunction, alerter};
use netmon_lambda::functions::notifier::{NotifierConfig, NotifierFunction, notifier};
use netmon_lambda::functions::prober::{ProberConfig, ProberFunction, prober};
use netmon_lambda::functions::recorder::{DrainOutput, RecorderConfig, RecorderFunction, recorder};
use netmon_lambda::functions::scheduler::{SchedulerConfig, SchedulerFunction};
use netmon_lambda::runtime::SqsFunction;
use netmon_lambda_testkit::emulator_clients;
use netmon_lambda_testkit::faults::FaultInjector;
use netmon_lambda_testkit::metrics::{CallCounter, CallSnapshot};
use netmon_lambda_testkit::runner::{Runner, RunningRunner, SourceSettings, queue_depth};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::emulator::{self, Resources};

/// Visibility timeouts. On SQS it is six times the function timeout so that a slow invocation
/// is never redelivered while it still runs; on a loaded test machine a few seconds can pass
/// for one invocation, so tests that expect no redelivery keep a margin, and the redrive test
/// a short one so five receives take seconds.
pub const VISIBILITY_S: u32 = 10;
pub const REDRIVE_VISIBILITY_S: u32 = 3;
/// Batching windows in tests; the deployed ones (5 s, 30 s) only add waiting.
pub const TEST_WINDOW: Duration = Duration::from_millis(300);
pub const LOCATION: &str = "emulator";
/// The notifier's public base URL: messages link under it.
pub const PUBLIC_URL: &str = "https://netmon.example.com/";

pub const FUNCTIONS: [&str; 5] = ["scheduler", "prober", "alerter", "notifier", "recorder"];
/// (function, queue variable) of the event sources; the recorder drains recorder-in itself
/// when the runner's `flush_history` fires its schedule.
pub const SOURCES: [(&str, &str); 3] = [
    ("prober", "NETMON_PROBE_JOBS_QUEUE_URL"),
    ("alerter", "NETMON_ALERTER_IN_QUEUE_URL"),
    ("notifier", "NETMON_NOTIFIER_IN_QUEUE_URL"),
];
pub const QUEUES: [&str; 4] = ["PROBE_JOBS", "ALERTER_IN", "NOTIFIER_IN", "RECORDER_IN"];

pub struct Stack {
    pub res: Resources,
    pub region: String,
    pub sdk: SdkConfig,
    /// One per function, plus `runner` (event-source polling).
    pub counters: BTreeMap<&'static str, CallCounter>,
    /// Uncounted: the test's own setup and inspection.
    pub harness: Clients,
    pub store: DynamoStateStore,
    pub scheduler: Arc<SchedulerFunction>,
    /// The scheduler's "now": each tick of the runner sets it to the minute fired (long past,
    /// see [`minute`]).
    pub tick_clock: Arc<ManualClock>,
    pub prober: Arc<ProberFunction>,
    pub alerter: Arc<AlerterFunction>,
    pub notifier: Arc<NotifierFunction>,
    pub recorder: Arc<RecorderFunction>,
}

impl Stack {
    pub async fn new(tag: &str) -> Self {
        Self::with_visibility(tag, VISIBILITY_S).await
    }

    pub async fn with_visibility(tag: &str, visibility_s: u32) -> Self {
        Self::build(tag, visibility_s, None).await
    }

    /// A stack whose functions' AWS calls fail now and then ([`FaultInjector`]); the harness's
    /// and the runner's own calls do not.
    pub async fn with_faults(tag: &str, faults: &FaultInjector) -> Self {
        Self::build(tag, VISIBILITY_S, Some(faults)).await
    }

    async fn build(tag: &str, visibility_s: u32, faults: Option<&FaultInjector>) -> Self {
        let res = emulator::provision_async(emulator::unique_prefix(tag), visibility_s).await;
        let emu = emulator::start();
        let sdk = emulator_clients(&emu.endpoint, &emu.region).await;
        let mut counters = BTreeMap::new();
        for name in FUNCTIONS.into_iter().chain(["runner"]) {
            counters.insert(name, CallCounter::new());
        }
        let counted = |name: &str| {
            Clients::builder(&sdk)
                .interceptor(Some(counters[name].interceptor()))
                .interceptor(faults.map(FaultInjector::interceptor))
                .build()
        };
        let var = |k: &str| res.get(k).to_owned();
        // Each function reads its config from the environment the resource script gives it, as
        // the binaries do; the targets and the webhook receiver are on 127.0.0.1.
        let vars = res.vars.clone();
        let ses_domain = ses_domain(&res.prefix);
        let env = Env::from_fn(move |name| match name {
            ENV_LOCATION => Some(LOCATION.into()),
            ENV_ALLOW_PRIVATE => Some("true".into()),
            ENV_SES_IDENTITY => Some(ses_domain.clone().into()),
            ENV_PUBLIC_URL => Some(PUBLIC_URL.into()),
            _ => vars.get(name).map(Into::into),
        });
        let tick_clock = Arc::new(ManualClock::new(minute(0)));
        let scheduler = Arc::new(
            SchedulerFunction::new(
                &counted("scheduler"),
                SchedulerConfig::from_env(&env).expect("scheduler config"),
            )
            .with_tick_clock(tick_clock.clone()),
        );
        let prober = Arc::new(
            prober(
                &counted("prober"),
                ProberConfig::from_env(&env).expect("prober config"),
            )
            .expect("prober"),
        );
        let alerter = Arc::new(alerter(
            &counted("alerter"),
            AlerterConfig::from_env(&env).expect("alerter config"),
        ));
        let notifier = Arc::new(
            notifier(
                &counted("notifier"),
                NotifierConfig::from_env(&env).expect("notifier config"),
            )
            .expect("notifier"),
        );
        let recorder = Arc::new(recorder(
            &counted("recorder"),
            RecorderConfig::from_env(&env).expect("recorder config"),
        ));
        let harness = Clients::new(&sdk);
        let store = DynamoStateStore::new(harness.dynamodb.clone(), var("NETMON_STATE_TABLE"));
        Self {
            region: emu.region.clone(),
            res,
            sdk,
            counters,
            harness,
            store,
            scheduler,
            tick_clock,
            prober,
            alerter,
            notifier,
            recorder,
        }
    }

    /// The SES identity (a domain) this stack's notifier sends email from, verified in moto;
    /// unique per stack so sent mail can be told apart.
    pub async fn verified_ses_domain(&self) -> String {
        let domain = ses_domain(&self.res.prefix);
        self.harness
            .ses
            .create_email_identity()
            .email_identity(&domain)
            .send()
            .await
            .expect("verify the SES identity");
        domain
    }

    pub fn var(&self, key: &str) -> String {
        self.res.get(key).to_owned()
    }

    pub fn function(&self, name: &str) -> Arc<dyn SqsFunction> {
        match name {
            "prober" => self.prober.clone(),
            "alerter" => self.alerter.clone(),
            "notifier" => self.notifier.clone(),
            other => panic!("no SQS function {other}"),
        }
    }

    /// A runner feeding `functions` (all three event sources when empty) with their deployed
    /// settings, the batching windows shortened to [`TEST_WINDOW`]; it runs the recorder on
    /// `flush_history`.
    pub async fn runner(&self, functions: &[&str], deliver_twice: bool) -> RunningRunner {
        let sqs = Clients::builder(&self.sdk)
            .interceptor(Some(self.counters["runner"].interceptor()))
            .build()
            .sqs;
        let mut runner = Runner::new(sqs, self.region.clone())
            .scheduler(self.scheduler.clone())
            .recorder(self.recorder.clone())
            .tick_clock(self.tick_clock.clone())
            .deliver_twice(deliver_twice);
        for (name, queue) in SOURCES {
            if !functions.is_empty() && !functions.contains(&name) {
                continue;
            }
            let settings = SourceSettings::deployed(name).expect("deployed settings");
            let settings = if settings.batching_window > Duration::ZERO {
                settings.with_batching_window(TEST_WINDOW)
            } else {
                settings
            };
            runner = runner.source_with(self.var(queue), settings, self.function(name));
        }
        runner.start().await.expect("runner starts")
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, CallSnapshot> {
        self.counters
            .iter()
            .map(|(k, c)| (*k, c.snapshot()))
            .collect()
    }

    /// Fires the recorder's schedule: every message on recorder-in is recorded and deleted.
    pub async fn flush_history(&self, runner: &RunningRunner) -> DrainOutput {
        let out = runner.flush_history().await.expect("the recorder drains");
        assert_eq!((out.left, out.undecodable), (0, 0), "{out:?}");
        let left = self.depth(&self.var("NETMON_RECORDER_IN_QUEUE_URL")).await;
        assert_eq!(left, 0, "recorder-in after a flush: {out:?}");
        out
    }

    pub async fn depth(&self, url: &str) -> u64 {
        queue_depth(&self.harness.sqs, url)
            .await
            .expect("queue depth")
    }

    /// Every queue and DLQ empty, but recorder-in itself, which waits for the recorder's
    /// schedule ([`Self::flush_history`] empties it).
    pub async fn assert_drained(&self) {
        for q in QUEUES {
            for kind in ["QUEUE", "DLQ"] {
                if (q, kind) == ("RECORDER_IN", "QUEUE") {
                    continue;
                }
                let key = format!("NETMON_{q}_{kind}_URL");
                let n = self.depth(&self.var(&key)).await;
                assert_eq!(n, 0, "{key} holds {n} message(s)");
            }
        }
    }

    pub async fn put_target(&self, spec: serde_json::Value) -> Target {
        self.put_target_in(&TenantId::default_tenant(), spec).await
    }

    /// Stores a target of `tenant` from its wire form.
    pub async fn put_target_in(&self, tenant: &TenantId, spec: serde_json::Value) -> Target {
        let spec: TargetSpec = serde_json::from_value(spec).expect("target spec");
        let now = chrono::Utc::now();
        self.store
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
            .await
            .expect("put target")
    }

    pub async fn put_webhook(&self, id: &str, url: &str) {
        self.put_channel(serde_json::json!({"id": id, "webhook": {"url": url}}))
            .await;
    }

    /// Stores a channel of the default tenant from its wire form.
    pub async fn put_channel(&self, spec: serde_json::Value) {
        self.put_channel_in(&TenantId::default_tenant(), spec).await
    }

    pub async fn put_channel_in(&self, tenant: &TenantId, spec: serde_json::Value) {
        let spec: ChannelSpec = serde_json::from_value(spec).expect("channel spec");
        let now = chrono::Utc::now();
        self.store
            .put_channel(
                Channel {
                    tenant: tenant.clone(),
                    spec,
                    version: 0,
                    created_at: now,
                    updated_at: now,
                },
                Expect::Absent,
            )
            .await
            .expect("put channel");
    }

    /// Sends raw bodies to a queue in one `SendMessageBatch`; returns their message ids.
    pub async fn send(&self, queue_key: &str, bodies: &[String]) -> Vec<String> {
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(b)
                    .build()
                    .expect("entry")
            })
            .collect();
        let out = self
            .harness
            .sqs
            .send_message_batch()
            .queue_url(self.var(queue_key))
            .set_entries(Some(entries))
            .send()
            .await
            .expect("send batch");
        assert!(out.failed().is_empty(), "{:?}", out.failed());
        let mut ok = out.successful().to_vec();
        ok.sort_by_key(|s| s.id()[1..].parse::<usize>().unwrap_or(0));
        ok.iter().map(|s| s.message_id().to_owned()).collect()
    }

    /// Receives everything in a queue (deleting it), as bodies.
    pub async fn drain(&self, url: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let out = self
                .harness
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let got = out.messages.unwrap_or_default();
            if got.is_empty() {
                empty += 1;
                continue;
            }
            for m in got {
                bodies.push(m.body.clone().unwrap_or_default());
                self.harness
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        bodies
    }

    /// A queue subscribed (raw, unfiltered) to the probe-results and incidents topics: a copy
    /// of every event the functions publish, for contract checks.
    pub async fn tap(&self) -> String {
        let sqs = &self.harness.sqs;
        let url = sqs
            .create_queue()
            .queue_name(format!("{}-tap", self.res.prefix))
            .send()
            .await
            .expect("create tap")
            .queue_url
            .expect("tap url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("tap arn")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("tap arn");
        for topic in [
            "NETMON_PROBE_RESULTS_TOPIC_ARN",
            "NETMON_INCIDENTS_TOPIC_ARN",
        ] {
            self.harness
                .sns
                .subscribe()
                .topic_arn(self.var(topic))
                .protocol("sqs")
                .endpoint(&arn)
                .attributes("RawMessageDelivery", "true")
                .send()
                .await
                .expect("subscribe tap");
        }
        url
    }
}

/// Polls `check` every 100 ms until it returns true, or panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Captures every log line of this process (JSON, as the functions log) for assertions.
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .try_init();
        logs
    })
}

#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Minutes in the past, from a base fixed once per test process: the scheduler plans them with
/// no delay left, so a round takes as long as the pipeline, not a minute.
pub fn minute(n: i64) -> chrono::DateTime<chrono::Utc> {
    static BASE: OnceLock<chrono::DateTime<chrono::Utc>> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        netmon_core::schedule::floor_minute(chrono::Utc::now()) - chrono::Duration::hours(2)
    });
    base + chrono::Duration::minutes(n)
}

fn ses_domain(prefix: &str) -> String {
    format!("{}.netmon.test", prefix.to_ascii_lowercase())
}

/// Every email moto's SES accepted (`GET /moto-api/data.json`, `ses.Message`: `source`,
/// `destinations`, `subject`, `body`, the HTML part when there is one).
pub async fn sent_emails() -> Vec<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = &emulator::start().endpoint;
    let host = endpoint.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to moto");
    conn.write_all(format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .expect("ask moto");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("moto's answer");
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let data: serde_json::Value = serde_json::from_str(body).expect("moto's data.json");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
