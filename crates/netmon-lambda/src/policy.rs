//! The cloud deployment's policy, in one place: what probes and webhooks may reach (the SSRF
//! guard's settings, from the environment), how targets are grouped into jobs, and how much
//! each function does at once. The functions and the template read these; nothing else repeats
//! them.

use std::sync::Arc;
use std::time::Duration;

use netmon_aws::resources::{ENV_ALLOW_LINK_LOCAL, ENV_ALLOW_PRIVATE};
use netmon_probe::{ProbeConfig, Prober, SystemResolver};

use crate::env::{Env, EnvError};
use crate::error::InitError;

/// Targets per probe job: one `probe.completed`, one read of the job's group of check states and
/// one history block each. A group (up to ~300 targets) of one instant is a few jobs; as large
/// as a message's probe budget, so a lone job still has every probe start at its slot.
pub(crate) const SHARD_SIZE: usize = 100;
/// Targets per probe-jobs message: jobs of one slot (most tenants' jobs are a few probes) share
/// an SQS message up to this (`netmon_aws::sqs::SqsJobQueue`), and the prober runs all of a
/// message's probes at once, so none waits behind another tenant's slow targets. Why 100: a
/// message of 100 targets of ~0.5 KB is ~50 KB, one billed 64 KB chunk (SQS bills per started
/// chunk, so larger messages save nothing more); and memory: a prober invocation runs
/// [`PROBER_JOBS_IN_FLIGHT`] messages at once, so at most 500 probes are in flight (twice the
/// 250 of five full jobs before), each holding at most its 64 KB body cap plus a connection's
/// TLS and HTTP buffers (tens of KB): under 100 MB in the worst case, within the prober's
/// 256 MB (`netmon_aws::resources::FUNCTIONS`). Not measured on Lambda.
pub const PROBES_PER_MESSAGE: usize = 100;
/// Due instants are floored to slots of this length, so a minute of one shard of targets is at
/// most six jobs; it must not exceed the shortest interval (10 s), or one job would list a
/// target twice.
pub const SLOT: Duration = Duration::from_secs(10);
/// How long a tick claim holds. Long enough to cover EventBridge's duplicate deliveries and
/// Lambda's asynchronous retries (1 and 2 minutes after a failure) of one scheduled event: a
/// tick that failed releases its claim so the retry runs; one that was killed mid-way (timeout)
/// keeps it, and its minute is not planned again (the next minutes are, normally), which beats
/// sending part of a minute's jobs twice.
pub(crate) const TICK_LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// Messages probed at once by one prober invocation (its event source's batch size is 5).
pub(crate) const PROBER_JOBS_IN_FLIGHT: usize = 5;
// A full job fits a message, and the memory reasoning at PROBES_PER_MESSAGE assumes at most 500
// probes in flight per invocation.
const _: () =
    assert!(SHARD_SIZE <= PROBES_PER_MESSAGE && PROBER_JOBS_IN_FLIGHT * PROBES_PER_MESSAGE <= 500);
/// Records of one alerter batch handled one by one: records of one batch often hold results of
/// the same targets (redeliveries, sub-minute intervals), and evaluating one target twice at
/// once only produces version conflicts, while Lambda's own concurrency runs batches in
/// parallel.
pub(crate) const ALERTER_IN_FLIGHT: usize = 1;
/// Notifications of one batch sent at once.
pub(crate) const NOTIFIER_IN_FLIGHT: usize = 4;
/// How long one recorder run keeps receiving from recorder-in; it then writes and deletes
/// its last round. Well under the recorder's 90 s timeout (`resources::FUNCTIONS`), which
/// the queue's visibility timeout (six times it) exceeds, so a message is never handed to a
/// second run while the first still holds it.
pub(crate) const RECORDER_DRAIN_BUDGET: Duration = Duration::from_secs(45);
/// A drain round (received, merged, written, then deleted) holds at most this many messages
/// and body bytes: memory stays bounded whatever the backlog (a few MB within 128 MB).
pub(crate) const RECORDER_ROUND_MESSAGES: usize = 1_000;
pub(crate) const RECORDER_ROUND_BYTES: usize = 8 * 1024 * 1024;
/// ReceiveMessage's wait: a short long-poll, so an empty queue ends a run after one second,
/// and a near-empty one is not mistaken for empty (a wait of 0 samples few SQS servers).
pub(crate) const RECORDER_RECEIVE_WAIT_SECS: u32 = 1;
/// ReceiveMessage calls in flight at once (ten messages each) once a receive comes back full: a
/// backlog of thousands of messages drains in a few seconds instead of one request's latency
/// per ten, while a short queue is read one call at a time (parallel calls would split its few
/// messages, each call billed).
pub(crate) const RECORDER_RECEIVES_IN_FLIGHT: usize = 4;
/// Per webhook delivery; the notifier's timeout (60 s in `resources::FUNCTIONS`) covers a batch
/// of them.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a "check now" waits for its reply: under the api function's timeout (29 s in
/// `resources::FUNCTIONS`), itself under API Gateway's 30 s integration limit.
pub const API_CHECK_TIMEOUT: Duration = Duration::from_secs(25);

/// What outbound connections may reach: probes, webhooks and channel test sends. Both default
/// to refused: in a multi-tenant cloud a tenant's URL must never reach the VPC or the instance
/// metadata service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// `NETMON_ALLOW_PRIVATE`: loopback and private ranges.
    pub allow_private: bool,
    /// `NETMON_ALLOW_LINK_LOCAL`: link-local ranges, cloud metadata included.
    pub allow_link_local: bool,
}

impl AddressPolicy {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            allow_private: env.flag(ENV_ALLOW_PRIVATE, false)?,
            allow_link_local: env.flag(ENV_ALLOW_LINK_LOCAL, false)?,
        })
    }

    /// The probe engine under this policy: probes, webhooks and test sends all go through it.
    pub fn prober(self) -> Result<Arc<Prober>, InitError> {
        Prober::try_new(
            ProbeConfig::new(self.allow_private, self.allow_link_local),
            Arc::new(SystemResolver),
        )
        .map(Arc::new)
        .map_err(|e| InitError::new(format!("cannot set up TLS for probes: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use netmon_aws::resources::{EVENT_SOURCES, Function, function};

    use super::*;

    fn deployed(name: &str) -> &'static Function {
        Function::named(name).expect("a function of the contract")
    }

    /// The settings here fit the deployed limits (netmon_aws::resources).
    #[test]
    fn in_flight_limits_and_timeouts_fit_the_deployed_functions() {
        let api = Duration::from_secs(deployed(function::API).timeout_secs.into());
        assert!(
            API_CHECK_TIMEOUT < api,
            "check-now must answer before the api times out"
        );
        for (name, in_flight) in [
            (function::PROBER, PROBER_JOBS_IN_FLIGHT),
            (function::NOTIFIER, NOTIFIER_IN_FLIGHT),
            (function::ALERTER, ALERTER_IN_FLIGHT),
        ] {
            let source = EVENT_SOURCES
                .iter()
                .find(|e| e.function == name)
                .expect("an event source");
            assert!(
                (1..=source.batch_size as usize).contains(&in_flight),
                "{name}: {in_flight} in flight, batch size {}",
                source.batch_size
            );
        }
        // A full notifier batch of slow webhooks still ends before the function's timeout.
        let notifier = EVENT_SOURCES
            .iter()
            .find(|e| e.function == function::NOTIFIER)
            .expect("the notifier's event source");
        let rounds = (notifier.batch_size as usize).div_ceil(NOTIFIER_IN_FLIGHT) as u32;
        assert!(
            DELIVERY_TIMEOUT * rounds
                < Duration::from_secs(deployed(function::NOTIFIER).timeout_secs.into())
        );
    }

    /// The recorder's run ends (budget, then one round's writes) before its timeout, and the
    /// queue keeps a received message invisible longer than a run.
    #[test]
    fn the_recorder_drain_fits_its_timeout_and_the_queue_visibility() {
        let timeout = Duration::from_secs(deployed(function::RECORDER).timeout_secs.into());
        assert!(RECORDER_DRAIN_BUDGET * 3 / 2 <= timeout);
        let queue = netmon_aws::resources::QUEUES
            .iter()
            .find(|q| q.suffix == netmon_aws::resources::RECORDER_QUEUE_SUFFIX)
            .expect("recorder-in");
        let visibility = Duration::from_secs(queue.visibility_timeout_secs().unwrap_or(0).into());
        assert!(visibility > timeout, "{visibility:?}");
    }

    #[test]
    fn outbound_policy_defaults_to_public_only() {
        let policy = AddressPolicy::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(
            policy,
            AddressPolicy {
                allow_private: false,
                allow_link_local: false
            }
        );
        let policy = AddressPolicy::from_env(&Env::from_pairs([(ENV_ALLOW_PRIVATE, "true")]));
        assert!(policy.unwrap().allow_private);
        assert!(
            AddressPolicy::from_env(&Env::from_pairs([(ENV_ALLOW_LINK_LOCAL, "maybe")])).is_err()
        );
    }
}
