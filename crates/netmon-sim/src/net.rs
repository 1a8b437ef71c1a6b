//! The models of the AWS services around the handlers, sharing one state ([`Net`]) and one
//! seeded generator: SQS queues (delays, visibility timeouts, receive counts, redrive to the
//! dead-letter queue, duplicate receives), SNS topics fanning out to their subscribed queues by
//! filter policy (at least once), the probe-jobs sender, DynamoDB faults through the memory
//! store's hook and gate, the probe engine answering from the ground truth, and channel
//! receivers answering as scripted.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::Duration;
use netmon_aws::sqs::job_messages;
use netmon_core::channel::ChannelSpec;
use netmon_core::events::{Envelope, Event};
use netmon_core::jobs::ProbeJob;
use netmon_core::observation::Observation;
use netmon_core::ports::{
    BusError, Clock, Deliver, DeliveryError, EventBus, JobQueue, ProbeEngine,
};
use netmon_core::target::CheckSpec;
use netmon_lambda::policy::PROBES_PER_MESSAGE;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::{Call, Fault, Gate, Op};

use crate::contract::Contract;
use crate::rng::Rng;
use crate::scenario::{Answer, Faults, HttpTruth, Instant, Receiver};

pub const PROBE_JOBS: &str = "probe-jobs";
pub const ALERTER_IN: &str = "alerter-in";
pub const NOTIFIER_IN: &str = "notifier-in";
pub const RECORDER_IN: &str = "recorder-in";

#[derive(Debug, Clone)]
pub struct Msg {
    pub id: u64,
    pub body: String,
    pub receives: u32,
    pub visible_at: Instant,
}

#[derive(Debug)]
pub struct Queue {
    pub visibility: Duration,
    pub max_receives: u32,
    pub msgs: BTreeMap<u64, Msg>,
    pub dlq: Vec<Msg>,
}

/// One line of the run's trace, tagged with the target or channel it concerns.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: Instant,
    pub tag: String,
    pub text: String,
}

/// One delivery attempt as a receiver saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it was made (part of the run's digest).
    pub at: Instant,
    pub channel: String,
    pub event_id: String,
    pub kind: &'static str,
    pub incident_id: String,
    pub target: String,
    pub opened_at: Instant,
    pub resolved_at: Option<Instant>,
    pub accepted: bool,
}

pub struct Net {
    pub rng: Rng,
    pub faults: Faults,
    /// Off while the simulation itself reads the store.
    pub faults_on: bool,
    pub queues: BTreeMap<String, Queue>,
    /// (topic, queue, event types).
    pub subscriptions: Vec<(String, String, Vec<String>)>,
    next_msg: u64,
    /// The invocation being polled, and those that crashed at a gate.
    pub current: usize,
    pub crashed: BTreeSet<usize>,
    pub yields: u64,
    pub trace: Vec<Line>,
    pub tracing: bool,
    pub attempts: Vec<Attempt>,
    pub receivers: Vec<Receiver>,
    pub clock: Arc<ManualClock>,
}

impl Net {
    pub fn new(
        seed_rng: Rng,
        faults: Faults,
        receivers: Vec<Receiver>,
        clock: Arc<ManualClock>,
    ) -> Self {
        let contract = Contract::deployed();
        let queues = contract
            .queues
            .iter()
            .map(|q| {
                (
                    q.suffix.clone(),
                    Queue {
                        visibility: Duration::seconds(q.visibility_timeout_secs),
                        max_receives: q.dead_letter_queue.max_receive_count,
                        msgs: BTreeMap::new(),
                        dlq: Vec::new(),
                    },
                )
            })
            .collect();
        let subscriptions = contract
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.topic.clone(),
                    s.queue.clone(),
                    s.filter_policy.types.clone(),
                )
            })
            .collect();
        Self {
            rng: seed_rng,
            faults,
            faults_on: true,
            queues,
            subscriptions,
            next_msg: 0,
            current: 0,
            crashed: BTreeSet::new(),
            yields: 0,
            trace: Vec::new(),
            tracing: false,
            attempts: Vec::new(),
            receivers,
            clock,
        }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Records a line if this run keeps a trace: a first run keeps none (formatting costs more
    /// than the simulation); a seed that finds a violation is run again with one, and since
    /// the run is deterministic it replays exactly.
    pub fn trace(&mut self, tag: impl Into<String>, text: impl FnOnce() -> String) {
        if !self.tracing {
            return;
        }
        let at = self.now();
        self.trace.push(Line {
            at,
            tag: tag.into(),
            text: text(),
        });
    }

    /// Sends `body` to `queue`, visible at `visible_at`.
    pub fn send(&mut self, queue: &str, body: String, visible_at: Instant) {
        self.next_msg += 1;
        let id = self.next_msg;
        if let Some(q) = self.queues.get_mut(queue) {
            q.msgs.insert(
                id,
                Msg {
                    id,
                    body,
                    receives: 0,
                    visible_at,
                },
            );
        }
    }

    fn jitter_ms(&mut self, max: i64) -> Duration {
        Duration::milliseconds(self.rng.between(0, max))
    }

    fn chance(&mut self, p: f64) -> bool {
        self.faults_on && self.rng.chance(p)
    }
}

pub type Shared = Arc<Mutex<Net>>;

pub fn lock(net: &Shared) -> MutexGuard<'_, Net> {
    net.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which topic an event goes to (as `netmon_aws::sns::Topic::for_event`).
fn topic_of(env: &Envelope) -> &'static str {
    match &env.event {
        Event::ProbeCompleted(_) => "probe-results",
        Event::IncidentOpened(_) | Event::IncidentResolved(_) | Event::IncidentReminder(_) => {
            "incidents"
        }
        _ => "target-changes",
    }
}

fn incident_line(env: &Envelope) -> Option<(String, String)> {
    match &env.event {
        Event::IncidentOpened(e) => Some((
            e.subject.target_id.to_string(),
            format!("opened {}", e.incident_id),
        )),
        Event::IncidentResolved(e) => Some((
            e.subject.target_id.to_string(),
            format!("resolved {}", e.incident_id),
        )),
        _ => None,
    }
}

/// SNS: fans each event out to the queues subscribed to its topic whose filter takes its type.
pub struct Sns(pub Shared);

#[async_trait]
impl EventBus for Sns {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        let mut net = lock(&self.0);
        let before = net.faults.sns_before;
        if net.chance(before) {
            for e in &events {
                if let Some((tag, what)) = incident_line(e) {
                    net.trace(tag, || format!("SNS publish of {what} failed"));
                }
            }
            return Err(BusError::Unavailable("injected: SNS publish failed".into()));
        }
        for env in &events {
            let topic = topic_of(env);
            let kind = env.event_type().as_str();
            let body = serde_json::to_string(env)
                .map_err(|e| BusError::Unavailable(format!("encode: {e}")))?;
            if let Some((tag, what)) = incident_line(env) {
                net.trace(tag, || format!("published {what}"));
            }
            if let Event::ProbeCompleted(batch) = &env.event
                && net.tracing
            {
                for r in &batch.results {
                    net.trace(r.target.to_string(), || {
                        format!(
                            "result {:?} slot {} started {} at {}",
                            r.outcome,
                            r.slot().format("%H:%M:%S%.3f"),
                            r.started_at.format("%H:%M:%S%.3f"),
                            r.location
                        )
                    });
                }
            }
            let targets: Vec<String> = net
                .subscriptions
                .iter()
                .filter(|(t, _, types)| t == topic && types.iter().any(|k| k == kind))
                .map(|(_, q, _)| q.clone())
                .collect();
            for q in targets {
                let at = net.now() + net.jitter_ms(500);
                net.send(&q, body.clone(), at);
                let dup = net.faults.sns_duplicate;
                if net.chance(dup) {
                    let at = net.now() + net.jitter_ms(5_000);
                    net.send(&q, body.clone(), at);
                }
            }
        }
        let after = net.faults.sns_after;
        if net.chance(after) {
            return Err(BusError::Unavailable("injected: SNS answer lost".into()));
        }
        Ok(())
    }
}

/// The probe-jobs sender: the messages `SqsJobQueue` would send (jobs of one delay share one, up
/// to the deployed probe budget), each delayed to its slot; a failed entry fails the call after
/// the others went out.
pub struct Jobs(pub Shared);

#[async_trait]
impl JobQueue for Jobs {
    async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        let mut net = lock(&self.0);
        let rate = net.faults.sqs_send_before;
        if net.chance(rate) {
            return Err(BusError::Unavailable("injected: SQS send failed".into()));
        }
        let now = net.now();
        let messages = job_messages(&jobs, now, PROBES_PER_MESSAGE)?;
        let mut failed = 0;
        for message in &messages {
            if net.chance(rate / 2.0) {
                failed += 1;
                continue;
            }
            let delay = Duration::seconds(message.delay_seconds.into());
            let at = now + delay + net.jitter_ms(300);
            net.send(PROBE_JOBS, message.body.clone(), at);
        }
        if failed > 0 {
            return Err(BusError::Unavailable(format!(
                "injected: {failed} of {} probe-job messages not sent",
                messages.len()
            )));
        }
        Ok(())
    }
}

/// Store ops that may write (a lost answer matters only for those).
fn writes(op: Op) -> bool {
    matches!(
        op,
        Op::PutTarget
            | Op::DeleteTarget
            | Op::PutChannel
            | Op::DeleteChannel
            | Op::CommitState
            | Op::MarkPublished
            | Op::Claim
            | Op::Complete
            | Op::Release
            | Op::Record
            | Op::RecordPing
            | Op::PutReply
    )
}

/// DynamoDB faults: throttled before the call, or the answer of a write lost after it.
pub fn fault_hook(net: Shared) -> impl Fn(Call) -> Fault + Send + Sync + 'static {
    move |call| {
        let mut net = lock(&net);
        let now = net.now();
        if call.op == Op::AllTargets
            && net.faults_on
            && net
                .faults
                .planning_broken
                .iter()
                .any(|(from, to)| *from <= now && now < *to)
        {
            net.trace("*", || {
                "reading the targets fails (planning broken)".to_owned()
            });
            return Fault::Before;
        }
        let (before, after) = (net.faults.store_before, net.faults.store_after);
        if net.chance(before) {
            return Fault::Before;
        }
        if writes(call.op) && net.chance(after) {
            let current = net.current;
            net.trace("*", || {
                format!("invocation {current}: answer of {} lost", call.op)
            });
            return Fault::After;
        }
        Fault::None
    }
}

/// Suspends a store call: yields to the invocations running at the same instant, or never
/// returns (the invocation crashes there: a timeout, an out-of-memory, a lost instance).
struct Suspend {
    yields: u32,
    forever: bool,
}

impl Future for Suspend {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.forever {
            return Poll::Pending;
        }
        if self.yields == 0 {
            return Poll::Ready(());
        }
        self.yields -= 1;
        // Combinators (`buffered`, `join_all`) poll again only what was woken.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub fn gate(net: Shared) -> impl Fn(Op) -> Gate + Send + Sync + 'static {
    move |op| {
        let mut net = lock(&net);
        let (crash, interleave) = (net.faults.crash, net.faults.interleave);
        let forever = net.chance(crash);
        if forever {
            let current = net.current;
            net.crashed.insert(current);
            net.trace("*", || format!("invocation {current} crashed at {op}"));
        }
        let yields = if net.chance(interleave) {
            u32::try_from(net.rng.between(1, 3)).unwrap_or(1)
        } else {
            0
        };
        net.yields += u64::from(yields);
        Box::pin(Suspend { yields, forever })
    }
}

/// The probe engine: answers from the ground truth at the virtual instant of the probe.
pub struct Engine {
    pub truth: Vec<HttpTruth>,
    pub clock: Arc<ManualClock>,
}

#[async_trait]
impl ProbeEngine for Engine {
    async fn observe(&self, check: &CheckSpec, _timeout: std::time::Duration) -> Observation {
        let now = self.clock.now();
        let down = match check {
            CheckSpec::Http(h) => self
                .truth
                .iter()
                .find(|t| t.url == h.url.as_str())
                .is_some_and(|t| t.is_down(now)),
            _ => false,
        };
        Observation {
            connected: true,
            status: Some(if down { 503 } else { 200 }),
            ..Observation::default()
        }
    }
}

/// The channels' receivers, answering as scripted and recording every attempt.
pub struct Receivers(pub Shared);

#[async_trait]
impl Deliver for Receivers {
    async fn deliver(&self, channel: &ChannelSpec, env: &Envelope) -> Result<(), DeliveryError> {
        let mut net = lock(&self.0);
        let now = net.now();
        let roll = net.rng.rate(1.0);
        let answer = net
            .receivers
            .iter()
            .find(|r| r.id == channel.id.as_str())
            .map_or(Answer::Refuse, |r| r.answer(now, roll));
        let (kind, incident_id, target, opened_at, resolved_at) = match &env.event {
            Event::IncidentOpened(e) => (
                "opened",
                &e.incident_id,
                &e.subject.target_id,
                e.opened_at,
                None,
            ),
            Event::IncidentResolved(e) => (
                "resolved",
                &e.incident_id,
                &e.subject.target_id,
                e.opened_at,
                Some(e.resolved_at),
            ),
            Event::IncidentReminder(e) => (
                "reminder",
                &e.incident_id,
                &e.subject.target_id,
                e.opened_at,
                None,
            ),
            _ => {
                return Err(DeliveryError::Final {
                    reason: "not a notification".into(),
                });
            }
        };
        let accepted = matches!(answer, Answer::Accept | Answer::Slow);
        let attempt = Attempt {
            at: now,
            channel: channel.id.to_string(),
            event_id: env.id.clone(),
            kind,
            incident_id: incident_id.clone(),
            target: target.to_string(),
            opened_at,
            resolved_at,
            accepted,
        };
        net.trace(target.to_string(), || {
            format!("{} <- {kind} {incident_id}: {answer:?}", channel.id)
        });
        net.attempts.push(attempt);
        match answer {
            Answer::Accept => Ok(()),
            Answer::Slow => Err(DeliveryError::retryable("timed out")),
            Answer::Down => Err(DeliveryError::retryable("HTTP 503")),
            Answer::Throttled(after) => Err(DeliveryError::Retryable {
                reason: "HTTP 429".into(),
                retry_after: Some(std::time::Duration::from_secs(after.unsigned_abs())),
            }),
            Answer::Refuse => Err(DeliveryError::Final {
                reason: "HTTP 400".into(),
            }),
        }
    }
}
