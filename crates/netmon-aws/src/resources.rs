//! The resource contract between the code, `localstack/init/ready.d/netmon-resources.sh` (moto and
//! LocalStack) and `infra/` (SAM, CDK): environment variable names, resource name suffixes,
//! key attributes, filter policies, event sources.

/// DynamoDB table for targets, channels, check state, incidents, the outbox, idempotency
/// records, heartbeat pings and schedule shards.
pub const ENV_STATE_TABLE: &str = "NETMON_STATE_TABLE";
/// DynamoDB table for probe history (per-job blocks and hourly rollups).
pub const ENV_HISTORY_TABLE: &str = "NETMON_HISTORY_TABLE";
/// SQS queue the scheduler fills with probe jobs.
pub const ENV_PROBE_JOBS_QUEUE_URL: &str = "NETMON_PROBE_JOBS_QUEUE_URL";
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

/// Physical names are `<prefix>-<suffix>`; the prefix is the stack/stage name.
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

/// The functions, by the name each has in `functions/<name>`, the templates and the logs.
pub mod function {
    pub const SCHEDULER: &str = "scheduler";
    pub const PROBER: &str = "prober";
    pub const ALERTER: &str = "alerter";
    pub const NOTIFIER: &str = "notifier";
    pub const RECORDER: &str = "recorder";
    pub const API: &str = "api";
}

/// An SNS subscription of a queue to a topic. All use raw message delivery, so the SQS body is
/// the event envelope itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub topic: &'static str,
    pub queue: &'static str,
    /// Event types the filter policy (on [`TYPE_ATTRIBUTE`]) lets through.
    pub event_types: &'static [&'static str],
}

pub const SUBSCRIPTIONS: &[Subscription] = &[
    Subscription {
        topic: PROBE_RESULTS_TOPIC_SUFFIX,
        queue: ALERTER_QUEUE_SUFFIX,
        event_types: &["probe.completed"],
    },
    Subscription {
        topic: PROBE_RESULTS_TOPIC_SUFFIX,
        queue: RECORDER_QUEUE_SUFFIX,
        event_types: &["probe.completed"],
    },
    Subscription {
        topic: INCIDENTS_TOPIC_SUFFIX,
        queue: NOTIFIER_QUEUE_SUFFIX,
        event_types: &["incident.opened", "incident.resolved", "incident.reminder"],
    },
];

/// Lambda redelivers a failed message this many times before SQS moves it to the DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// An SQS event source mapping and the settings of the function it feeds. infra/ deploys
/// exactly these (the drift check compares), and the local event-source runner mirrors them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSource {
    pub queue: &'static str,
    pub function: &'static str,
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window_secs: u32,
    /// `ScalingConfig.MaximumConcurrency`.
    pub max_concurrency: u32,
    /// The consuming function's `Timeout`.
    pub function_timeout_secs: u32,
}

pub const EVENT_SOURCES: &[EventSource] = &[
    EventSource {
        queue: PROBE_JOBS_QUEUE_SUFFIX,
        function: function::PROBER,
        batch_size: 5,
        batching_window_secs: 0,
        max_concurrency: 20,
        function_timeout_secs: 90,
    },
    EventSource {
        queue: ALERTER_QUEUE_SUFFIX,
        function: function::ALERTER,
        batch_size: 10,
        batching_window_secs: 5,
        max_concurrency: 5,
        function_timeout_secs: 30,
    },
    EventSource {
        queue: NOTIFIER_QUEUE_SUFFIX,
        function: function::NOTIFIER,
        batch_size: 10,
        batching_window_secs: 0,
        max_concurrency: 5,
        function_timeout_secs: 60,
    },
    EventSource {
        queue: RECORDER_QUEUE_SUFFIX,
        function: function::RECORDER,
        batch_size: 100,
        batching_window_secs: 30,
        max_concurrency: 2,
        function_timeout_secs: 30,
    },
];
