//! The resource contract between the code, `localstack/init/ready.d/netmon-resources.sh` (moto and
//! LocalStack) and `infra/` (SAM, CDK): environment variable names, resource name suffixes,
//! key attributes, filter policies. The drift checks read this file's constants.

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

/// Subscriptions: (topic suffix, queue suffix, event types the filter policy lets through).
/// All use raw message delivery, so the SQS body is the event envelope itself.
pub const SUBSCRIPTIONS: &[(&str, &str, &[&str])] = &[
    (
        PROBE_RESULTS_TOPIC_SUFFIX,
        ALERTER_QUEUE_SUFFIX,
        &["probe.completed"],
    ),
    (
        PROBE_RESULTS_TOPIC_SUFFIX,
        RECORDER_QUEUE_SUFFIX,
        &["probe.completed"],
    ),
    (
        INCIDENTS_TOPIC_SUFFIX,
        NOTIFIER_QUEUE_SUFFIX,
        &["incident.opened", "incident.resolved", "incident.reminder"],
    ),
];

/// Lambda redelivers a failed message this many times before SQS moves it to the DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// SQS event source mappings: (queue suffix, consuming function, `BatchSize`,
/// `MaximumBatchingWindowInSeconds`, `ScalingConfig.MaximumConcurrency`, the function's
/// `Timeout` in seconds). infra/ deploys exactly these (the drift check compares), and the local
/// event-source runner (`runner.rs`) mirrors them.
pub const EVENT_SOURCES: &[(&str, &str, u32, u32, u32, u32)] = &[
    (PROBE_JOBS_QUEUE_SUFFIX, "prober", 5, 0, 20, 90),
    (ALERTER_QUEUE_SUFFIX, "alerter", 10, 5, 5, 30),
    (NOTIFIER_QUEUE_SUFFIX, "notifier", 10, 0, 5, 60),
    (RECORDER_QUEUE_SUFFIX, "recorder", 100, 30, 2, 30),
];
