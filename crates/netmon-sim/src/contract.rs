//! The deployment as the template wires it, read from `infra/contract.json` (generated from
//! `netmon_aws::resources`, and the template is checked against it): queues with their
//! visibility timeouts and redrive policies, topic subscriptions with their filters, and the
//! event sources' batch sizes, batching windows and concurrency.

use serde::Deserialize;

const CONTRACT: &str = include_str!("../../../infra/contract.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Contract {
    pub queues: Vec<Queue>,
    pub subscriptions: Vec<Subscription>,
    pub event_sources: Vec<EventSource>,
    #[serde(default)]
    pub drains: Vec<Drain>,
}

/// A queue its function drains on a schedule (the recorder's).
#[derive(Debug, Clone, Deserialize)]
pub struct Drain {
    pub queue: String,
    pub every_minutes: EveryMinutes,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EveryMinutes {
    pub default: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Queue {
    pub suffix: String,
    pub visibility_timeout_secs: i64,
    pub dead_letter_queue: DeadLetterQueue,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeadLetterQueue {
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub topic: String,
    pub queue: String,
    pub filter_policy: FilterPolicy,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FilterPolicy {
    #[serde(rename = "type")]
    pub types: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSource {
    pub queue: String,
    pub batch_size: usize,
    pub batching_window_secs: i64,
    pub max_concurrency: usize,
}

impl Contract {
    /// The checked-in contract; it is generated, so failing to parse it is a build problem.
    pub fn deployed() -> Self {
        serde_json::from_str(CONTRACT).unwrap_or_else(|e| panic!("infra/contract.json: {e}"))
    }

    /// The event source of `queue`; a drained queue is modelled as one run at a time taking
    /// up to 1,000 messages once its oldest has waited the drain interval (close to a schedule
    /// of that interval, without the clock alignment).
    pub fn source_of(&self, queue: &str) -> Option<EventSource> {
        self.event_sources
            .iter()
            .find(|s| s.queue == queue)
            .cloned()
            .or_else(|| {
                self.drains
                    .iter()
                    .find(|d| d.queue == queue)
                    .map(|d| EventSource {
                        queue: d.queue.clone(),
                        batch_size: 1_000,
                        batching_window_secs: d.every_minutes.default * 60,
                        max_concurrency: 1,
                    })
            })
    }
}
