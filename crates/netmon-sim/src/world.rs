//! The discrete-event loop: virtual time jumps to the next timer (an EventBridge tick, a
//! heartbeat ping) or the next instant a queue has messages for its consumer; everything due
//! then runs as concurrent invocations of the real handlers, interleaved at store calls by the
//! seed, each possibly crashing at one.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use chrono::Duration;
use netmon_app::http::ApiContext;
use netmon_core::TargetId;
use netmon_core::TenantId;
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::incident::CheckState;
use netmon_core::ports::{
    ChannelStore, Clock, EventBus, Expect, HeartbeatStore, HistoryStore, Outbox, StateStore,
    TargetStore, Versioned,
};
use netmon_core::target::{Target, TargetSpec};
use netmon_lambda::batch::BatchOutcome;
use netmon_lambda::error::FunctionError;
use netmon_lambda::functions::alerter::alerter_over;
use netmon_lambda::functions::notifier::notifier_over;
use netmon_lambda::functions::prober::prober_over;
use netmon_lambda::functions::recorder::recorder_over;
use netmon_lambda::functions::scheduler::SchedulerFunction;
use netmon_lambda::runtime::SqsFunction;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::MemoryStore;
use tower::ServiceExt;

use crate::contract::Contract;
use crate::net::{
    self, ALERTER_IN, Engine, Jobs, NOTIFIER_IN, PROBE_JOBS, RECORDER_IN, Receivers, Shared, Sns,
};
use crate::scenario::{Instant, Scenario};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// EventBridge delivers the scheduled event of `minute` (`attempt` 0, then Lambda's two
    /// asynchronous retries).
    Tick {
        minute: Instant,
        attempt: u32,
    },
    /// A heartbeat job pings.
    Ping {
        beat: usize,
        attempt: u32,
    },
    Rename,
}

enum Done {
    Batch {
        queue: &'static str,
        ids: Vec<u64>,
        result: Result<BatchOutcome, FunctionError>,
    },
    Tick {
        minute: Instant,
        attempt: u32,
        ok: bool,
    },
    Ping {
        beat: usize,
        attempt: u32,
        status: u16,
    },
}

type Invocation = Pin<Box<dyn Future<Output = Done>>>;

/// An invocation and what its caller sees if it crashes (Lambda reports a timeout or an error).
type Running = (Invocation, Done);

/// The longest an incident event may wait in the outbox while ticks run: ticks come every
/// minute and are retried, and a sweep can fail on a throttled read or publish.
const OUTBOX_WAIT: Duration = Duration::minutes(10);

/// What the loop saw of each target's state, to catch a state moving backwards.
#[derive(Default)]
struct Seen {
    /// Outbox events already reported as waiting too long.
    outbox_late: std::collections::BTreeSet<String>,
    watermarks: BTreeMap<(String, String), Instant>,
    open: BTreeMap<String, String>,
    closed: std::collections::BTreeSet<String>,
    summary: BTreeMap<String, String>,
}

pub struct World {
    pub scenario: Scenario,
    pub net: Shared,
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryStore>,
    pub tenant: TenantId,
    contract: Contract,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    timer_seq: u64,
    location: String,
    engine: Arc<Engine>,
    seen: Seen,
    pub violations: Vec<(String, Vec<String>)>,
    pub invocations: u64,
    /// The api function's router (built once: building it builds the OpenAPI document).
    api: axum::Router,
    /// Whether each ping attempt's record landed: (beat, instant recorded).
    pub recorded_pings: Vec<(usize, Instant)>,
}

impl World {
    pub fn new(scenario: Scenario, rng: crate::rng::Rng) -> Self {
        let clock = Arc::new(ManualClock::new(scenario.start));
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let net: Shared = Arc::new(std::sync::Mutex::new(net::Net::new(
            rng,
            scenario.faults.clone(),
            scenario.receivers.clone(),
            clock.clone(),
        )));
        let engine = Arc::new(Engine {
            truth: scenario.http.clone(),
            clock: clock.clone(),
        });
        let bus: Arc<dyn EventBus> = Arc::new(Sns(net.clone()));
        let api = netmon_app::api::router(
            ApiContext::builder(
                store.clone(),
                store.clone() as Arc<dyn HistoryStore>,
                bus,
                clock.clone() as Arc<dyn Clock>,
                TenantId::default_tenant(),
            )
            // API Gateway's throttling is the deployed limit; the router's own counts wall
            // time, which a simulation must not read.
            .rate_limits(netmon_app::http::limit::RateLimits {
                per_second: 1e9,
                burst: u32::MAX,
            })
            .build(),
        );
        Self {
            api,
            net,
            clock,
            store,
            tenant: TenantId::default_tenant(),
            contract: Contract::deployed(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            location: "eu".into(),
            engine,
            seen: Seen::default(),
            violations: Vec::new(),
            invocations: 0,
            recorded_pings: Vec::new(),
            scenario,
        }
    }

    fn at(&mut self, when: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((when, self.timer_seq, timer)));
    }

    fn faults(&self, on: bool) {
        net::lock(&self.net).faults_on = on;
    }

    async fn setup(&mut self) {
        self.faults(false);
        let scenario = self.scenario.clone();
        let s = &scenario;
        let mut specs = Vec::new();
        for t in &s.http {
            specs.push(serde_json::json!({
                "id": t.id, "http": {"url": t.url},
                "interval": format!("{}s", t.interval.num_seconds()), "timeout": "5s",
                "failure_threshold": t.failure_threshold, "success_threshold": t.success_threshold,
            }));
        }
        for b in &s.beats {
            specs.push(serde_json::json!({
                "id": b.id, "heartbeat": {
                    "period": format!("{}s", b.period.num_seconds()),
                    "grace": format!("{}s", b.grace.num_seconds()), "token": b.token},
            }));
        }
        for spec in specs {
            let spec: TargetSpec =
                serde_json::from_value(spec).unwrap_or_else(|e| panic!("spec: {e}"));
            let target = Target {
                tenant: self.tenant.clone(),
                spec,
                version: 0,
                created_at: s.start,
                updated_at: s.start,
            };
            self.store
                .put_target(target, Expect::Absent)
                .await
                .unwrap_or_else(|e| panic!("put_target: {e}"));
        }
        for r in &s.receivers {
            let spec: ChannelSpec =
                serde_json::from_value(serde_json::json!({"id": r.id, "name": r.id, "log": {}}))
                    .unwrap_or_else(|e| panic!("channel: {e}"));
            let channel = Channel {
                tenant: self.tenant.clone(),
                spec,
                version: 0,
                created_at: s.start,
                updated_at: s.start,
            };
            self.store
                .put_channel(channel, Expect::Absent)
                .await
                .unwrap_or_else(|e| panic!("put_channel: {e}"));
        }
        self.store.set_fault_hook(net::fault_hook(self.net.clone()));
        self.store.set_gate(net::gate(self.net.clone()));
        // EventBridge: one scheduled event per minute, sometimes twice, late, or not at all.
        let mut minute = s.start;
        let mut ticks = Vec::new();
        {
            let mut net = net::lock(&self.net);
            let f = net.faults.clone();
            while minute < s.end {
                if !net.rng.chance(f.tick_missing) {
                    let late = if net.rng.chance(f.tick_late) {
                        net.rng.between(1_000, 50_000)
                    } else {
                        net.rng.between(0, 2_000)
                    };
                    ticks.push((minute + Duration::milliseconds(late), minute));
                    if net.rng.chance(f.tick_duplicate) {
                        ticks.push((
                            minute + Duration::milliseconds(late + net.rng.between(0, 30_000)),
                            minute,
                        ));
                    }
                }
                minute += Duration::minutes(1);
            }
        }
        for (when, minute) in ticks {
            self.at(when, Timer::Tick { minute, attempt: 0 });
        }
        let pings: Vec<(Instant, usize)> = s
            .beats
            .iter()
            .enumerate()
            .flat_map(|(i, b)| b.pings.iter().map(move |p| (*p, i)))
            .collect();
        for (when, beat) in pings {
            self.at(when, Timer::Ping { beat, attempt: 0 });
        }
        if let Some(at) = s.rename_at {
            self.at(at, Timer::Rename);
        }
        self.faults(true);
    }

    /// The next instant a queue hands messages to its consumer: its earliest visible message,
    /// plus the event source's batching window.
    fn next_poll(&self) -> Option<Instant> {
        let net = net::lock(&self.net);
        net.queues
            .iter()
            .filter_map(|(name, q)| {
                let window = self
                    .contract
                    .source_of(name)
                    .map_or(0, |s| s.batching_window_secs);
                q.msgs
                    .values()
                    .map(|m| m.visible_at)
                    .min()
                    .map(|v| v + Duration::seconds(window))
            })
            .min()
    }

    pub async fn run(&mut self) {
        self.setup().await;
        let end = self.scenario.end;
        loop {
            let timer = self.timers.peek().map(|Reverse((t, _, _))| *t);
            let poll = self.next_poll();
            let next = match (timer, poll) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            if next > self.clock.now() {
                self.clock.set(next);
            }
            let mut invocations: Vec<Running> = Vec::new();
            if timer == Some(next) {
                while let Some(Reverse((t, _, _))) = self.timers.peek() {
                    if *t > next {
                        break;
                    }
                    let Some(Reverse((_, _, timer))) = self.timers.pop() else {
                        break;
                    };
                    if let Some(inv) = self.fire(timer) {
                        invocations.push(inv);
                    }
                }
            } else {
                invocations = self.poll_queues(next);
            }
            if invocations.is_empty() {
                continue;
            }
            self.invocations += invocations.len() as u64;
            let results = self.drive(invocations).await;
            for done in results {
                self.finish(done).await;
            }
            self.check_states().await;
        }
    }

    fn fire(&mut self, timer: Timer) -> Option<Running> {
        match timer {
            Timer::Tick { minute, attempt } => {
                let scheduler = SchedulerFunction::over(
                    self.store.clone(),
                    Arc::new(Jobs(self.net.clone())),
                    Arc::new(Sns(self.net.clone())),
                    self.clock.clone(),
                );
                let mut event = EventBridgeEvent::default();
                event.time = Some(minute);
                let crashed = Done::Tick {
                    minute,
                    attempt,
                    ok: false,
                };
                let net = self.net.clone();
                let now = self.clock.now();
                let down = self
                    .scenario
                    .scheduler_down
                    .iter()
                    .any(|(from, to)| *from <= now && now < *to);
                if down || self.invoke_fails() {
                    return Some((
                        Box::pin(async move {
                            Done::Tick {
                                minute,
                                attempt,
                                ok: false,
                            }
                        }),
                        crashed,
                    ));
                }
                Some((
                    Box::pin(async move {
                        let out = scheduler.handle(event).await;
                        let ok = out.is_ok();
                        if let Ok(out) = out {
                            net::lock(&net).trace("*", || {
                                format!(
                                    "tick {} (attempt {attempt}): {} jobs{}",
                                    minute.format("%H:%M"),
                                    out.jobs,
                                    if out.duplicate { ", duplicate" } else { "" }
                                )
                            });
                        }
                        Done::Tick {
                            minute,
                            attempt,
                            ok,
                        }
                    }),
                    crashed,
                ))
            }
            Timer::Ping { beat, attempt } => {
                let token = self.scenario.beats[beat].token.clone();
                let api_down = {
                    let mut net = net::lock(&self.net);
                    let p = net.faults.api_before;
                    net.faults_on && net.rng.chance(p)
                };
                let crashed = Done::Ping {
                    beat,
                    attempt,
                    status: 504,
                };
                if api_down {
                    return Some((
                        Box::pin(async move {
                            Done::Ping {
                                beat,
                                attempt,
                                status: 503,
                            }
                        }),
                        crashed,
                    ));
                }
                let router = self.api.clone();
                Some((
                    Box::pin(async move {
                        let request = axum::http::Request::builder()
                            .method("POST")
                            .uri(format!("/ping/{token}"))
                            .body(Body::empty());
                        let status = match request {
                            Ok(request) => match router.oneshot(request).await {
                                Ok(response) => response.status().as_u16(),
                                Err(never) => match never {},
                            },
                            Err(_) => 400,
                        };
                        Done::Ping {
                            beat,
                            attempt,
                            status,
                        }
                    }),
                    crashed,
                ))
            }
            Timer::Rename => {
                let old = std::mem::replace(&mut self.location, "eu-renamed".into());
                net::lock(&self.net).trace("*", || format!("prober location renamed from {old}"));
                None
            }
        }
    }

    fn invoke_fails(&self) -> bool {
        let mut net = net::lock(&self.net);
        let p = net.faults.invoke_error;
        net.faults_on && net.rng.chance(p)
    }

    /// Hands each queue's visible messages to its consumer: up to its concurrency in batches
    /// of its batch size, in a seeded order (SQS standard queues do not keep order).
    fn poll_queues(&mut self, now: Instant) -> Vec<Running> {
        let mut out = Vec::new();
        let names: Vec<&'static str> = vec![PROBE_JOBS, ALERTER_IN, NOTIFIER_IN, RECORDER_IN];
        for name in names {
            let Some(source) = self.contract.source_of(name) else {
                continue;
            };
            let window = Duration::seconds(source.batching_window_secs);
            let mut batches: Vec<Vec<(u64, String, u32)>> = Vec::new();
            {
                let mut net = net::lock(&self.net);
                let net = &mut *net;
                let Some(q) = net.queues.get_mut(name) else {
                    continue;
                };
                let due = q.msgs.values().map(|m| m.visible_at).min();
                if due.is_none_or(|d| d + window > now) {
                    continue;
                }
                let mut dups = Vec::new();
                let mut visible: Vec<u64> = q
                    .msgs
                    .values()
                    .filter(|m| m.visible_at <= now)
                    .map(|m| m.id)
                    .collect();
                net.rng.shuffle(&mut visible);
                visible.truncate(source.batch_size * source.max_concurrency);
                for chunk in visible.chunks(source.batch_size) {
                    let mut batch = Vec::new();
                    for id in chunk {
                        let Some(m) = q.msgs.get_mut(id) else {
                            continue;
                        };
                        if m.receives >= q.max_receives {
                            let m = q.msgs.remove(id);
                            if let Some(m) = m {
                                if net.tracing {
                                    net.trace.push(net::Line {
                                        at: now,
                                        tag: "*".into(),
                                        text: format!("{name}: message {} moved to the DLQ", m.id),
                                    });
                                }
                                q.dlq.push(m);
                            }
                            continue;
                        }
                        m.receives += 1;
                        m.visible_at = now + q.visibility;
                        batch.push((m.id, m.body.clone(), m.receives));
                        if name == ALERTER_IN
                            && net.tracing
                            && let Ok(env) =
                                serde_json::from_str::<netmon_core::events::Envelope>(&m.body)
                            && let netmon_core::events::Event::ProbeCompleted(b) = &env.event
                        {
                            for r in &b.results {
                                let text = format!(
                                    "alerter gets {:?} slot {} (message {}, receive {})",
                                    r.outcome,
                                    r.slot().format("%H:%M:%S%.3f"),
                                    m.id,
                                    m.receives
                                );
                                net.trace.push(net::Line {
                                    at: now,
                                    tag: r.target.to_string(),
                                    text,
                                });
                            }
                        }
                        if net.faults_on && net.rng.chance(net.faults.sqs_duplicate) {
                            // Handed out again while in flight: at least once.
                            let again = now + Duration::milliseconds(net.rng.between(0, 5_000));
                            dups.push((m.body.clone(), again, *id));
                        }
                    }
                    if !batch.is_empty() {
                        batches.push(batch);
                    }
                }
                for (body, again, id) in dups {
                    net.send(name, body, again);
                    net.trace("*", || format!("{name}: message {id} handed out twice"));
                }
            }
            for batch in batches {
                let ids: Vec<u64> = batch.iter().map(|(id, _, _)| *id).collect();
                let mut event = SqsEvent::default();
                event.records = batch
                    .into_iter()
                    .map(|(id, body, receives)| {
                        let mut m = SqsMessage::default();
                        m.message_id = Some(format!("m{id}"));
                        m.body = Some(body);
                        m.attributes
                            .insert("ApproximateReceiveCount".into(), receives.to_string());
                        m
                    })
                    .collect();
                if self.invoke_fails() {
                    continue;
                }
                let function: Box<dyn SqsFunction> = match name {
                    PROBE_JOBS => Box::new(prober_over(
                        self.engine.clone(),
                        Arc::new(Sns(self.net.clone())),
                        self.clock.clone(),
                        self.location.clone(),
                    )),
                    ALERTER_IN => Box::new(alerter_over(
                        self.store.clone(),
                        Arc::new(Sns(self.net.clone())),
                        self.clock.clone(),
                    )),
                    NOTIFIER_IN => Box::new(notifier_over(
                        self.store.clone(),
                        Arc::new(Receivers(self.net.clone())),
                        self.clock.clone(),
                    )),
                    _ => Box::new(recorder_over(self.store.clone() as Arc<dyn HistoryStore>)),
                };
                let crashed = Done::Batch {
                    queue: name,
                    ids: ids.clone(),
                    result: Err(FunctionError::Retryable("crashed".into())),
                };
                out.push((
                    Box::pin(async move {
                        let result = function.handle(event).await;
                        Done::Batch {
                            queue: name,
                            ids,
                            result,
                        }
                    }) as Invocation,
                    crashed,
                ));
            }
        }
        out
    }

    /// Polls the invocations of one instant together, in a seeded order each round, until each
    /// finished or crashed (`None`).
    async fn drive(&mut self, invocations: Vec<Running>) -> Vec<Done> {
        let mut crashed = Vec::new();
        let mut slots: Vec<Option<Invocation>> = invocations
            .into_iter()
            .map(|(inv, on_crash)| {
                crashed.push(Some(on_crash));
                Some(inv)
            })
            .collect();
        let mut out = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut idle = 0u32;
        loop {
            let mut order: Vec<usize> = (0..slots.len()).filter(|i| slots[*i].is_some()).collect();
            if order.is_empty() {
                break;
            }
            let yields_before = {
                let mut net = net::lock(&self.net);
                net.rng.shuffle(&mut order);
                net.yields
            };
            let mut progress = false;
            for i in order {
                net::lock(&self.net).current = i;
                let Some(fut) = slots[i].as_mut() else {
                    continue;
                };
                match fut.as_mut().poll(&mut cx) {
                    Poll::Ready(done) => {
                        out.push(done);
                        slots[i] = None;
                        progress = true;
                    }
                    Poll::Pending => {
                        if net::lock(&self.net).crashed.remove(&i) {
                            slots[i] = None;
                            out.extend(crashed[i].take());
                            progress = true;
                        }
                    }
                }
            }
            if !progress && net::lock(&self.net).yields == yields_before {
                // Waiting on the runtime (nothing the models do): let it run.
                idle += 1;
                if idle == 9_999 {
                    let live: Vec<usize> =
                        (0..slots.len()).filter(|i| slots[*i].is_some()).collect();
                    eprintln!("stuck: {live:?} at {}", self.clock.now());
                }
                assert!(
                    idle < 10_000,
                    "an invocation is stuck on something outside the models"
                );
                tokio::task::yield_now().await;
            }
        }
        out
    }

    async fn finish(&mut self, done: Done) {
        match done {
            Done::Batch { queue, ids, result } => {
                if queue == ALERTER_IN {
                    let what = match &result {
                        Ok(o) if o.failures.is_empty() => "done".to_owned(),
                        Ok(o) => format!(
                            "failed {:?}",
                            o.failures
                                .iter()
                                .map(|f| format!("{} {}", f.message_id, f.reason))
                                .collect::<Vec<_>>()
                        ),
                        Err(e) => format!("error {e}"),
                    };
                    net::lock(&self.net).trace("*", || format!("alerter batch {ids:?}: {what}"));
                }
                let failed: Vec<u64> = match &result {
                    Ok(outcome) => outcome
                        .failures
                        .iter()
                        .filter_map(|f| f.message_id.strip_prefix('m')?.parse().ok())
                        .collect(),
                    Err(_) => ids.clone(),
                };
                let mut net = net::lock(&self.net);
                if let Some(q) = net.queues.get_mut(queue) {
                    for id in ids {
                        if !failed.contains(&id) {
                            q.msgs.remove(&id);
                        }
                    }
                }
            }
            Done::Tick {
                minute,
                attempt,
                ok,
            } => {
                if !ok && attempt < 2 {
                    // Lambda retries a failed asynchronous invocation twice, 1 and 2 minutes
                    // later.
                    let wait = Duration::minutes(i64::from(attempt) + 1);
                    let when = self.clock.now() + wait;
                    self.at(
                        when,
                        Timer::Tick {
                            minute,
                            attempt: attempt + 1,
                        },
                    );
                }
                if !ok {
                    net::lock(&self.net).trace("*", || {
                        format!("tick {} failed (attempt {attempt})", minute.format("%H:%M"))
                    });
                }
                self.check_outbox().await;
            }
            Done::Ping {
                beat,
                attempt,
                status,
            } => {
                let now = self.clock.now();
                let id = self.scenario.beats[beat].id.clone();
                self.faults(false);
                let recorded = self
                    .store
                    .last_pings()
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .any(|p| p.target.as_str() == id && p.at == now);
                self.faults(true);
                if recorded {
                    self.recorded_pings.push((beat, now));
                }
                net::lock(&self.net)
                    .trace(id, || format!("ping -> {status} (recorded: {recorded})"));
                // Jobs that do not retry lose pings only in the first six hours, so every
                // incident has settled by the end.
                let retries = self.scenario.beats[beat].retries
                    || now >= self.scenario.end - Duration::hours(4);
                if !(200..300).contains(&status) && attempt < 5 && retries {
                    self.at(
                        now + Duration::seconds(10),
                        Timer::Ping {
                            beat,
                            attempt: attempt + 1,
                        },
                    );
                }
            }
        }
    }

    /// No state moves backwards: a location's watermark never decreases, and an incident that
    /// closed never opens again.
    /// Every tick sweeps the outbox whatever becomes of its planning (defect 6 of issue 10):
    /// an event waits there no longer than [`OUTBOX_WAIT`] plus the minutes the scheduler was
    /// down meanwhile.
    async fn check_outbox(&mut self) {
        self.faults(false);
        let pending = self.store.pending(1_000).await.unwrap_or_default();
        self.faults(true);
        let now = self.clock.now();
        for entry in pending {
            let since = entry.created_at;
            let down: Duration = self
                .scenario
                .scheduler_down
                .iter()
                .map(|(d, u)| ((*u).min(now) - (*d).max(since)).max(Duration::zero()))
                .sum();
            let waited = now - since;
            if waited > OUTBOX_WAIT + down
                && self.seen.outbox_late.insert(entry.envelope.id.clone())
            {
                self.violations.push((
                    format!(
                        "{} waited {} min in the outbox (since {}) while ticks ran",
                        entry.envelope.id,
                        waited.num_minutes(),
                        since.format("%H:%M:%S")
                    ),
                    vec!["*".to_owned()],
                ));
            }
        }
    }

    async fn check_states(&mut self) {
        self.faults(false);
        let states = self
            .store
            .list_states(&self.tenant)
            .await
            .unwrap_or_default();
        self.faults(true);
        for (target, Versioned { value, .. }) in states {
            self.see(&target, &value);
        }
    }

    fn see(&mut self, target: &TargetId, state: &CheckState) {
        let t = target.to_string();
        if net::lock(&self.net).tracing {
            self.trace_state(&t, state);
        }
        for (loc, l) in &state.locations {
            let key = (t.clone(), loc.clone());
            if let Some(prev) = self.seen.watermarks.get(&key)
                && l.watermark < *prev
            {
                self.violations.push((
                    format!(
                        "{t}: location {loc}'s watermark went back from {prev} to {}",
                        l.watermark
                    ),
                    vec![t.clone()],
                ));
            }
            self.seen.watermarks.insert(key, l.watermark);
        }
        let open = state.incident.as_ref().map(|i| i.id.clone());
        if let Some(prev) = self.seen.open.get(&t).cloned()
            && open.as_ref() != Some(&prev)
        {
            self.seen.closed.insert(prev);
        }
        match open {
            Some(id) => {
                if self.seen.closed.contains(&id) {
                    self.violations.push((
                        format!("{t}: incident {id} opened again after it closed"),
                        vec![t.clone()],
                    ));
                }
                self.seen.open.insert(t, id);
            }
            None => {
                self.seen.open.remove(&t);
            }
        }
    }

    fn trace_state(&mut self, t: &str, state: &CheckState) {
        let summary = format!(
            "state {:?} incident {:?} {}",
            state.status,
            state.incident.as_ref().map(|i| &i.id),
            state
                .locations
                .iter()
                .map(|(k, l)| format!(
                    "{k}:{}f{}s{}@{}",
                    if l.down { "down," } else { "" },
                    l.consecutive_failures,
                    l.consecutive_successes,
                    l.watermark.format("%H:%M:%S")
                ))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if self.seen.summary.get(t) != Some(&summary) {
            net::lock(&self.net).trace(t, || summary.clone());
            self.seen.summary.insert(t.to_owned(), summary);
        }
    }

    /// What is left at the end, for the final checks.
    pub async fn leftovers(&self) -> (Vec<(TargetId, CheckState)>, usize) {
        self.faults(false);
        let states = self
            .store
            .list_states(&self.tenant)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(t, v)| (t, v.value))
            .collect();
        let pending = self
            .store
            .pending(1_000)
            .await
            .map(|p| p.len())
            .unwrap_or(0);
        (states, pending)
    }
}
