//! The resource contract, written once: every table, topic, queue, subscription, event source
//! and function the code expects, with the names, keys, settings and environment variables that
//! tie them together.
//!
//! Everything else reads it as data: [`contract_file_text`] renders it to `infra/contract.json` (a
//! test in `tests/contract.rs` fails while the committed file is stale), which the CDK app and
//! `localstack/init/ready.d/netmon-resources.sh` (moto, LocalStack) build from, and against which
//! `infra/tools/check_drift.py` checks the hand-written SAM template and the synthesized CDK
//! template. Which variables each function really reads is checked against [`FUNCTIONS`] by
//! netmon-lambda's `tests/env_contract.rs`.
//!
//! Physical names are `<prefix>-<suffix>`; the prefix is the stack/stage name (`netmon-dev`).

use serde_json::{Value, json};

/// DynamoDB table for targets, channels, check state, incidents, the outbox, idempotency
/// records, heartbeat pings and schedule shards.
pub const ENV_STATE_TABLE: &str = "NETMON_STATE_TABLE";
/// DynamoDB table for probe history (per-job blocks and hourly rollups).
pub const ENV_HISTORY_TABLE: &str = "NETMON_HISTORY_TABLE";
/// SQS queue the scheduler fills with probe jobs.
pub const ENV_PROBE_JOBS_QUEUE_URL: &str = "NETMON_PROBE_JOBS_QUEUE_URL";
/// SQS queue of probe results the recorder drains on its schedule.
pub const ENV_RECORDER_IN_QUEUE_URL: &str = "NETMON_RECORDER_IN_QUEUE_URL";
/// SNS topic for `probe.completed`.
pub const ENV_PROBE_RESULTS_TOPIC_ARN: &str = "NETMON_PROBE_RESULTS_TOPIC_ARN";
/// SNS topic for `incident.*`.
pub const ENV_INCIDENTS_TOPIC_ARN: &str = "NETMON_INCIDENTS_TOPIC_ARN";
/// SNS topic for `target.*` (no built-in subscriber; a hook for integrations).
pub const ENV_TARGET_CHANGES_TOPIC_ARN: &str = "NETMON_TARGET_CHANGES_TOPIC_ARN";
/// Name of the probing location (prober); defaults to `AWS_REGION`.
pub const ENV_LOCATION: &str = "NETMON_LOCATION";
/// `true` lets probes and webhooks reach loopback and private ranges (default false in the cloud).
pub const ENV_ALLOW_PRIVATE: &str = "NETMON_ALLOW_PRIVATE";
/// `true` lets probes reach link-local ranges, cloud metadata included (default false).
pub const ENV_ALLOW_LINK_LOCAL: &str = "NETMON_ALLOW_LINK_LOCAL";
/// The SES identity (an address or a domain) email channels send from; empty: no email on AWS.
/// The notifier's and the API's (test sends) IAM policies allow `ses:SendEmail` on this identity
/// only.
pub const ENV_SES_IDENTITY: &str = "NETMON_SES_IDENTITY";
/// The public base URL messages link to (the status page under it); empty: no links.
pub const ENV_PUBLIC_URL: &str = "NETMON_PUBLIC_URL";
/// The api function's dashboard session secret (at least 32 characters); empty: dashboard
/// sign-in is off on AWS.
pub const ENV_SESSION_SECRET: &str = "NETMON_SESSION_SECRET";

pub const STATE_TABLE_SUFFIX: &str = "state";
pub const HISTORY_TABLE_SUFFIX: &str = "history";
pub const PROBE_RESULTS_TOPIC_SUFFIX: &str = "probe-results";
pub const INCIDENTS_TOPIC_SUFFIX: &str = "incidents";
pub const TARGET_CHANGES_TOPIC_SUFFIX: &str = "target-changes";
pub const PROBE_JOBS_QUEUE_SUFFIX: &str = "probe-jobs";
pub const ALERTER_QUEUE_SUFFIX: &str = "alerter-in";
pub const RECORDER_QUEUE_SUFFIX: &str = "recorder-in";
pub const NOTIFIER_QUEUE_SUFFIX: &str = "notifier-in";
/// Every queue `<name>` has a dead-letter queue `<name>-dlq`.
pub const DLQ_SUFFIX: &str = "-dlq";

/// Both tables: partition key `pk` (S), sort key `sk` (S), TTL attribute `ttl` (epoch seconds).
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TTL: &str = "ttl";
/// State table GSI over pending outbox events (sparse: only unpublished events carry it).
pub const OUTBOX_INDEX: &str = "outbox-pending";
pub const OUTBOX_INDEX_PK: &str = "gsi1pk";
pub const OUTBOX_INDEX_SK: &str = "gsi1sk";

/// SNS message attribute carrying the event type, for subscription filter policies.
pub const TYPE_ATTRIBUTE: &str = "type";

/// Lambda redelivers a failed message this many times before SQS moves it to the DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// A queue's visibility timeout is this many times its consumer's timeout (AWS guidance for SQS
/// event sources: a batch that times out, and its retries, stay invisible meanwhile).
pub const VISIBILITY_TIMEOUT_FACTOR: u32 = 6;
/// Queues keep a message 4 days (the SQS default), dead-letter queues 14 days (the maximum),
/// time enough to redrive after a weekend.
pub const QUEUE_RETENTION_SECS: u32 = 4 * 24 * 3600;
pub const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;

/// The functions, by the name each has in `functions/<name>`, the templates and the logs.
pub mod function {
    pub const SCHEDULER: &str = "scheduler";
    pub const PROBER: &str = "prober";
    pub const ALERTER: &str = "alerter";
    pub const NOTIFIER: &str = "notifier";
    pub const RECORDER: &str = "recorder";
    pub const API: &str = "api";
}

/// A DynamoDB table: string keys, a TTL attribute, on-demand capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub suffix: &'static str,
    /// Variable that carries the table's name to a function.
    pub env: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub ttl_attribute: &'static str,
    pub indexes: &'static [Index],
}

/// A global secondary index with string keys, projecting every attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
}

pub const TABLES: &[Table] = &[
    Table {
        suffix: STATE_TABLE_SUFFIX,
        env: ENV_STATE_TABLE,
        partition_key: PK,
        sort_key: SK,
        ttl_attribute: TTL,
        indexes: &[Index {
            name: OUTBOX_INDEX,
            partition_key: OUTBOX_INDEX_PK,
            sort_key: OUTBOX_INDEX_SK,
        }],
    },
    Table {
        suffix: HISTORY_TABLE_SUFFIX,
        env: ENV_HISTORY_TABLE,
        partition_key: PK,
        sort_key: SK,
        ttl_attribute: TTL,
        indexes: &[],
    },
];

/// An SNS topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic {
    pub suffix: &'static str,
    /// Variable that carries the topic's ARN to a function.
    pub env: &'static str,
}

pub const TOPICS: &[Topic] = &[
    Topic {
        suffix: PROBE_RESULTS_TOPIC_SUFFIX,
        env: ENV_PROBE_RESULTS_TOPIC_ARN,
    },
    Topic {
        suffix: INCIDENTS_TOPIC_SUFFIX,
        env: ENV_INCIDENTS_TOPIC_ARN,
    },
    Topic {
        suffix: TARGET_CHANGES_TOPIC_SUFFIX,
        env: ENV_TARGET_CHANGES_TOPIC_ARN,
    },
];

/// An SQS queue and its dead-letter queue `<suffix>-dlq`, which takes a message after
/// [`MAX_RECEIVE_COUNT`] receives. Its visibility timeout follows from the function that
/// consumes it ([`Queue::visibility_timeout_secs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    pub suffix: &'static str,
    /// Variable that carries the queue's URL (the resource script's output; functions read the
    /// ones listed in their [`Function::env`]).
    pub env: &'static str,
    /// Variable that carries the dead-letter queue's URL (the resource script's output).
    pub dlq_env: &'static str,
    pub retention_secs: u32,
    pub dlq_retention_secs: u32,
    pub max_receive_count: u32,
}

impl Queue {
    const fn new(suffix: &'static str, env: &'static str, dlq_env: &'static str) -> Self {
        Self {
            suffix,
            env,
            dlq_env,
            retention_secs: QUEUE_RETENTION_SECS,
            dlq_retention_secs: DLQ_RETENTION_SECS,
            max_receive_count: MAX_RECEIVE_COUNT,
        }
    }

    /// For a consumer that paces its own retries and keeps a message for a day or more (the
    /// notifier: a receiver down for hours still gets the notification).
    const fn with_max_receive_count(mut self, count: u32) -> Self {
        self.max_receive_count = count;
        self
    }

    pub fn dlq_suffix(&self) -> String {
        format!("{}{DLQ_SUFFIX}", self.suffix)
    }

    /// The function an event source feeds from this queue, or that drains it on its schedule.
    pub fn consumer(&self) -> Option<&'static Function> {
        EVENT_SOURCES
            .iter()
            .map(|source| (source.queue, source.function))
            .chain(DRAINS.iter().map(|d| (d.queue, d.function)))
            .find(|(queue, _)| *queue == self.suffix)
            .and_then(|(_, function)| Function::named(function))
    }

    /// [`VISIBILITY_TIMEOUT_FACTOR`] times the consumer's timeout; `None` for a queue nothing
    /// consumes.
    pub fn visibility_timeout_secs(&self) -> Option<u32> {
        self.consumer()
            .map(|f| VISIBILITY_TIMEOUT_FACTOR * f.timeout_secs)
    }
}

pub const QUEUES: &[Queue] = &[
    Queue::new(
        PROBE_JOBS_QUEUE_SUFFIX,
        ENV_PROBE_JOBS_QUEUE_URL,
        "NETMON_PROBE_JOBS_DLQ_URL",
    ),
    Queue::new(
        ALERTER_QUEUE_SUFFIX,
        "NETMON_ALERTER_IN_QUEUE_URL",
        "NETMON_ALERTER_IN_DLQ_URL",
    ),
    Queue::new(
        RECORDER_QUEUE_SUFFIX,
        ENV_RECORDER_IN_QUEUE_URL,
        "NETMON_RECORDER_IN_DLQ_URL",
    ),
    Queue::new(
        NOTIFIER_QUEUE_SUFFIX,
        "NETMON_NOTIFIER_IN_QUEUE_URL",
        "NETMON_NOTIFIER_IN_DLQ_URL",
    )
    .with_max_receive_count(NOTIFIER_MAX_RECEIVE_COUNT),
];

/// Receives of a notifier-in message before its DLQ: at its visibility timeout (6 minutes)
/// this spans 30 hours, beyond the notifier's 26 hours of retries
/// (`netmon_app::services::notifier::GIVE_UP_AFTER`), within the queue's 4-day retention.
pub const NOTIFIER_MAX_RECEIVE_COUNT: u32 = 300;

/// An SNS subscription of a queue to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub topic: &'static str,
    pub queue: &'static str,
    /// Event types the filter policy (on the [`TYPE_ATTRIBUTE`] message attribute) lets through.
    pub event_types: &'static [&'static str],
    /// The SQS body is the event envelope itself, not SNS's notification JSON around it.
    pub raw_message_delivery: bool,
}

pub const SUBSCRIPTIONS: &[Subscription] = &[
    Subscription {
        topic: PROBE_RESULTS_TOPIC_SUFFIX,
        queue: ALERTER_QUEUE_SUFFIX,
        event_types: &["probe.completed"],
        raw_message_delivery: true,
    },
    Subscription {
        topic: PROBE_RESULTS_TOPIC_SUFFIX,
        queue: RECORDER_QUEUE_SUFFIX,
        event_types: &["probe.completed"],
        raw_message_delivery: true,
    },
    Subscription {
        topic: INCIDENTS_TOPIC_SUFFIX,
        queue: NOTIFIER_QUEUE_SUFFIX,
        event_types: &["incident.opened", "incident.resolved", "incident.reminder"],
        raw_message_delivery: true,
    },
];

/// An SQS event source mapping. Every one reports partial batch failures (the batch driver
/// answers with `batchItemFailures`). infra/ deploys exactly these, and the local event-source
/// runner mirrors them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSource {
    pub queue: &'static str,
    pub function: &'static str,
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window_secs: u32,
    /// `ScalingConfig.MaximumConcurrency`.
    pub max_concurrency: u32,
}

pub const EVENT_SOURCES: &[EventSource] = &[
    EventSource {
        queue: PROBE_JOBS_QUEUE_SUFFIX,
        function: function::PROBER,
        batch_size: 5,
        batching_window_secs: 0,
        max_concurrency: 20,
    },
    EventSource {
        queue: ALERTER_QUEUE_SUFFIX,
        function: function::ALERTER,
        batch_size: 10,
        batching_window_secs: 5,
        // Few concurrent writers: less optimistic-lock contention.
        max_concurrency: 5,
    },
    EventSource {
        queue: NOTIFIER_QUEUE_SUFFIX,
        function: function::NOTIFIER,
        batch_size: 10,
        batching_window_secs: 0,
        // Protects the receivers.
        max_concurrency: 5,
    },
];

/// A queue that no event source feeds: its function receives from it itself, on its schedule
/// (every `parameter` minutes, [`Drain::default_minutes`] unless the deployment says otherwise),
/// so messages of many minutes meet in one invocation. The function's role may receive,
/// delete and change visibility on that queue only; the queue's redrive policy still moves a
/// message that keeps failing to its DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    pub queue: &'static str,
    pub function: &'static str,
    /// The SAM parameter (PascalCase) / CDK context `netmon:<name>` setting the interval.
    pub parameter: &'static str,
    pub default_minutes: u32,
    /// `rate(<default_minutes> minutes)`, what the function's `schedule` says (a test checks
    /// they agree).
    pub default_schedule: &'static str,
    /// The intervals a deployment may choose (EventBridge says `rate(1 minute)`, not
    /// `minutes`, so one is left out; more than 15 makes charts too stale).
    pub allowed_minutes: &'static [u32],
}

/// How often, by default, the recorder drains recorder-in: history and charts lag by up to
/// this (alerts do not: the alerter has its own queue).
const HISTORY_FLUSH_MINUTES: u32 = 5;
const HISTORY_FLUSH_SCHEDULE: &str = "rate(5 minutes)";

pub const DRAINS: &[Drain] = &[Drain {
    queue: RECORDER_QUEUE_SUFFIX,
    function: function::RECORDER,
    parameter: "historyFlushMinutes",
    default_minutes: HISTORY_FLUSH_MINUTES,
    default_schedule: HISTORY_FLUSH_SCHEDULE,
    allowed_minutes: &[2, 3, 5, 10, 15],
}];

/// A Lambda function: its limits and every variable its `*Config::from_env` reads (besides the
/// `AWS_*` ones Lambda sets). Each variable's value is a resource's name, ARN or URL (the
/// resource whose `env` it is) or a [`Setting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub timeout_secs: u32,
    pub memory_mb: u32,
    pub env: &'static [&'static str],
    /// An EventBridge schedule expression that invokes it, if any.
    pub schedule: Option<&'static str>,
}

impl Function {
    pub fn named(name: &str) -> Option<&'static Function> {
        FUNCTIONS.iter().find(|f| f.name == name)
    }
}

pub const FUNCTIONS: &[Function] = &[
    Function {
        name: function::SCHEDULER,
        timeout_secs: 30,
        // CPU, not memory: a tick of 100,000 targets streams them in ~90 MB of RSS but takes
        // ~4.5 CPU-seconds (scripts/bench-scheduler), and Lambda's CPU share follows memory
        // (a whole vCPU at 1,769 MB), so 1,024 MB keeps it near 8 s of its 30 s timeout
        // (docs/dynamodb.md, memory and CPU).
        memory_mb: 1024,
        env: &[
            ENV_STATE_TABLE,
            ENV_PROBE_JOBS_QUEUE_URL,
            ENV_PROBE_RESULTS_TOPIC_ARN,
            ENV_INCIDENTS_TOPIC_ARN,
        ],
        schedule: Some("rate(1 minute)"),
    },
    Function {
        name: function::PROBER,
        timeout_secs: 90,
        memory_mb: 256,
        env: &[
            ENV_PROBE_RESULTS_TOPIC_ARN,
            ENV_LOCATION,
            ENV_ALLOW_PRIVATE,
            ENV_ALLOW_LINK_LOCAL,
        ],
        schedule: None,
    },
    Function {
        name: function::ALERTER,
        timeout_secs: 30,
        memory_mb: 128,
        env: &[ENV_STATE_TABLE, ENV_INCIDENTS_TOPIC_ARN],
        schedule: None,
    },
    Function {
        name: function::NOTIFIER,
        timeout_secs: 60,
        memory_mb: 128,
        env: &[
            ENV_STATE_TABLE,
            ENV_ALLOW_PRIVATE,
            ENV_ALLOW_LINK_LOCAL,
            ENV_SES_IDENTITY,
            ENV_PUBLIC_URL,
        ],
        schedule: None,
    },
    Function {
        name: function::RECORDER,
        // A drain stops receiving after `RECORDER_DRAIN_BUDGET_SECS` and then writes its last
        // round; the rest is margin for that round's writes.
        timeout_secs: 90,
        memory_mb: 128,
        env: &[ENV_HISTORY_TABLE, ENV_RECORDER_IN_QUEUE_URL],
        schedule: Some(HISTORY_FLUSH_SCHEDULE),
    },
    Function {
        name: function::API,
        // "Check now" waits up to 25 s for its reply; API Gateway gives up at 30 s.
        timeout_secs: 29,
        memory_mb: 256,
        env: &[
            ENV_STATE_TABLE,
            ENV_HISTORY_TABLE,
            ENV_PROBE_RESULTS_TOPIC_ARN,
            ENV_TARGET_CHANGES_TOPIC_ARN,
            ENV_PROBE_JOBS_QUEUE_URL,
            ENV_ALLOW_PRIVATE,
            ENV_ALLOW_LINK_LOCAL,
            ENV_SES_IDENTITY,
            ENV_PUBLIC_URL,
            ENV_SESSION_SECRET,
        ],
        schedule: None,
    },
];

/// A function variable that names no resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub env: &'static str,
    pub value: SettingValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingValue {
    /// Chosen per deployment: the SAM parameter / CDK context `netmon:<name>` of this name.
    Parameter(&'static str),
    /// A parameter whose empty value means "off" (no SES identity: no email on AWS).
    OptionalParameter(&'static str),
    /// The same in every deployment.
    Fixed(&'static str),
}

pub const SETTINGS: &[Setting] = &[
    // Empty means the deployment's region.
    Setting {
        env: ENV_LOCATION,
        value: SettingValue::Parameter("location"),
    },
    Setting {
        env: ENV_ALLOW_PRIVATE,
        value: SettingValue::Parameter("allowPrivateTargets"),
    },
    // Cloud metadata stays unreachable in every deployment.
    Setting {
        env: ENV_ALLOW_LINK_LOCAL,
        value: SettingValue::Fixed("false"),
    },
    Setting {
        env: ENV_SES_IDENTITY,
        value: SettingValue::OptionalParameter("sesIdentity"),
    },
    Setting {
        env: ENV_PUBLIC_URL,
        value: SettingValue::OptionalParameter("publicUrl"),
    },
    Setting {
        env: ENV_SESSION_SECRET,
        value: SettingValue::OptionalParameter("sessionSecret"),
    },
];

/// Where a function variable's value comes from, as `infra/contract.json` spells it.
fn env_source(name: &str) -> Option<Value> {
    if let Some(t) = TABLES.iter().find(|t| t.env == name) {
        return Some(json!({ "table_name": t.suffix }));
    }
    if let Some(t) = TOPICS.iter().find(|t| t.env == name) {
        return Some(json!({ "topic_arn": t.suffix }));
    }
    if let Some(q) = QUEUES.iter().find(|q| q.env == name) {
        return Some(json!({ "queue_url": q.suffix }));
    }
    SETTINGS
        .iter()
        .find(|s| s.env == name)
        .map(|s| match s.value {
            SettingValue::Parameter(p) => json!({ "parameter": p }),
            SettingValue::OptionalParameter(p) => json!({ "parameter": p, "optional": true }),
            SettingValue::Fixed(v) => json!({ "value": v }),
        })
}

fn contract_json() -> Value {
    let key = |name: &str| json!({ "name": name, "type": "S" });
    json!({
        "about": "Generated from crates/netmon-aws/src/resources.rs; do not edit. Regenerate: NETMON_WRITE_CONTRACT=1 cargo nextest run -p netmon-aws contract",
        "version": 1,
        "name_pattern": "<prefix>-<suffix>",
        "tables": TABLES.iter().map(|t| json!({
            "suffix": t.suffix,
            "env": t.env,
            "billing_mode": "PAY_PER_REQUEST",
            "partition_key": key(t.partition_key),
            "sort_key": key(t.sort_key),
            "ttl_attribute": t.ttl_attribute,
            "indexes": t.indexes.iter().map(|i| json!({
                "name": i.name,
                "partition_key": key(i.partition_key),
                "sort_key": key(i.sort_key),
                "projection": "ALL",
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "topics": TOPICS.iter().map(|t| json!({ "suffix": t.suffix, "env": t.env })).collect::<Vec<_>>(),
        "visibility_timeout_factor": VISIBILITY_TIMEOUT_FACTOR,
        "queues": QUEUES.iter().map(|q| json!({
            "suffix": q.suffix,
            "env": q.env,
            "consumer": q.consumer().map(|f| f.name),
            "visibility_timeout_secs": q.visibility_timeout_secs(),
            "retention_secs": q.retention_secs,
            "dead_letter_queue": {
                "suffix": q.dlq_suffix(),
                "env": q.dlq_env,
                "retention_secs": q.dlq_retention_secs,
                "max_receive_count": q.max_receive_count,
            },
        })).collect::<Vec<_>>(),
        "subscriptions": SUBSCRIPTIONS.iter().map(|s| json!({
            "topic": s.topic,
            "queue": s.queue,
            "raw_message_delivery": s.raw_message_delivery,
            "filter_policy_scope": "MessageAttributes",
            "filter_policy": { TYPE_ATTRIBUTE: s.event_types },
        })).collect::<Vec<_>>(),
        "drains": DRAINS.iter().map(|d| json!({
            "queue": d.queue,
            "function": d.function,
            "every_minutes": { "parameter": d.parameter, "default": d.default_minutes, "allowed": d.allowed_minutes },
        })).collect::<Vec<_>>(),
        "event_sources": EVENT_SOURCES.iter().map(|e| json!({
            "queue": e.queue,
            "function": e.function,
            "batch_size": e.batch_size,
            "batching_window_secs": e.batching_window_secs,
            "max_concurrency": e.max_concurrency,
            "function_response_types": ["ReportBatchItemFailures"],
        })).collect::<Vec<_>>(),
        "functions": FUNCTIONS.iter().map(|f| json!({
            "name": f.name,
            "timeout_secs": f.timeout_secs,
            "memory_mb": f.memory_mb,
            "schedule": f.schedule,
            "environment": f.env.iter().map(|name| (name.to_string(), env_source(name).unwrap_or(Value::Null))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The contract as `infra/contract.json`'s text (pretty, one trailing newline). Derived values
/// (DLQ names, visibility timeouts, each variable's source, filter policies) are spelled out so
/// readers need no rules.
pub fn contract_file_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&contract_json()).expect("a serde_json::Value serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn unique<'a>(what: &str, names: impl IntoIterator<Item = &'a str>) {
        let mut seen = HashSet::new();
        for n in names {
            assert!(seen.insert(n), "{what} {n} is declared twice");
        }
    }

    #[test]
    fn names_are_unique() {
        unique("table", TABLES.iter().map(|t| t.suffix));
        unique("topic", TOPICS.iter().map(|t| t.suffix));
        unique(
            "queue",
            QUEUES
                .iter()
                .flat_map(|q| [q.suffix.to_owned(), q.dlq_suffix()])
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        unique("function", FUNCTIONS.iter().map(|f| f.name));
        let envs: Vec<&str> = TABLES
            .iter()
            .map(|t| t.env)
            .chain(TOPICS.iter().map(|t| t.env))
            .chain(QUEUES.iter().flat_map(|q| [q.env, q.dlq_env]))
            .chain(SETTINGS.iter().map(|s| s.env))
            .collect();
        unique("variable", envs);
    }

    #[test]
    fn references_resolve() {
        for s in SUBSCRIPTIONS {
            assert!(TOPICS.iter().any(|t| t.suffix == s.topic), "{s:?}");
            assert!(QUEUES.iter().any(|q| q.suffix == s.queue), "{s:?}");
            assert!(!s.event_types.is_empty(), "{s:?} would let nothing through");
        }
        for e in EVENT_SOURCES {
            assert!(QUEUES.iter().any(|q| q.suffix == e.queue), "{e:?}");
            assert!(Function::named(e.function).is_some(), "{e:?}");
        }
        for f in FUNCTIONS {
            for name in f.env {
                assert!(
                    env_source(name).is_some(),
                    "{} reads {name}, which is no resource's variable and no setting",
                    f.name
                );
            }
        }
    }

    /// design.md §1: every queue has a DLQ, visibility >= 6x its consumer's timeout,
    /// maxReceiveCount >= 5; and one function consumes each queue.
    #[test]
    fn every_queue_has_one_consumer_and_the_redelivery_rules() {
        for q in QUEUES {
            let consumers = EVENT_SOURCES.iter().filter(|e| e.queue == q.suffix).count()
                + DRAINS.iter().filter(|d| d.queue == q.suffix).count();
            assert_eq!(
                consumers, 1,
                "{} has {consumers} event sources and drains",
                q.suffix
            );
            let consumer = q.consumer().expect("a consumer");
            assert_eq!(
                q.visibility_timeout_secs(),
                Some(6 * consumer.timeout_secs),
                "{}",
                q.suffix
            );
            assert!(q.max_receive_count >= 5, "{}", q.suffix);
            assert!(q.dlq_retention_secs > q.retention_secs, "{}", q.suffix);
            // SQS limits: visibility at most 12 hours, retention 60 s to 14 days.
            assert!(q.visibility_timeout_secs().unwrap_or(0) <= 12 * 3600);
            assert!((60..=1_209_600).contains(&q.dlq_retention_secs));
        }
    }

    /// A drained queue's function runs on the drain's schedule, reads the queue's URL, and
    /// its default interval is one it allows.
    #[test]
    fn drains_are_scheduled_functions_that_read_their_queue() {
        for d in DRAINS {
            let f = Function::named(d.function).expect("the drain's function");
            assert_eq!(f.schedule, Some(d.default_schedule), "{d:?}");
            assert_eq!(
                d.default_schedule,
                format!("rate({} minutes)", d.default_minutes)
            );
            assert!(d.allowed_minutes.contains(&d.default_minutes), "{d:?}");
            assert!(d.allowed_minutes.iter().all(|m| *m >= 2), "{d:?}");
            let q = QUEUES.iter().find(|q| q.suffix == d.queue).expect("queue");
            assert!(f.env.contains(&q.env), "{} reads {}", f.name, q.env);
            assert!(
                !EVENT_SOURCES.iter().any(|e| e.function == d.function),
                "{d:?}"
            );
        }
    }

    #[test]
    fn the_json_names_each_variables_source() {
        let contract = contract_json();
        let prober = contract["functions"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == "prober"))
            .expect("prober in the contract");
        assert_eq!(
            prober["environment"][ENV_PROBE_RESULTS_TOPIC_ARN],
            json!({ "topic_arn": "probe-results" })
        );
        assert_eq!(
            prober["environment"][ENV_LOCATION],
            json!({ "parameter": "location" })
        );
        assert_eq!(
            prober["environment"][ENV_ALLOW_LINK_LOCAL],
            json!({ "value": "false" })
        );
        let jobs = &contract["queues"][0];
        assert_eq!(jobs["suffix"], "probe-jobs");
        assert_eq!(jobs["visibility_timeout_secs"], 540);
        assert_eq!(jobs["dead_letter_queue"]["suffix"], "probe-jobs-dlq");
    }
}
