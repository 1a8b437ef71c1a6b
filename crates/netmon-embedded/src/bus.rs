//! The in-process event bus used by `netmon up`.
//!
//! `publish` returns only once every matching subscriber has *handled* each event. In one process
//! this stands in for SQS durability: the outbox relay marks an event published only after the
//! notifier really processed it, so a crash never loses a notification (the event is still
//! pending in the outbox on restart and is delivered again; consumers dedupe on the event id).
//!
//! Channels are bounded and `publish` waits for capacity: a slow subscriber slows publishers
//! down instead of events being dropped or memory growing without bound.
//!
//! Do not publish from a handler to a subscription that can route back to the same handler:
//! with every slot of its consumer busy waiting on its own full queue, it deadlocks. netmon's
//! handlers publish through the outbox, which avoids this.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use netmon_core::events::{Envelope, EventType};
use netmon_core::ports::{BusError, EventBus};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Same shape as `futures::future::BoxFuture`, without the dependency.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which event types a subscriber receives.
#[derive(Clone, Debug)]
pub enum EventFilter {
    All,
    Types(BTreeSet<EventType>),
    /// For example `EventFilter::Matching(EventType::is_incident)`.
    Matching(fn(EventType) -> bool),
}

impl EventFilter {
    pub fn matches(&self, t: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Types(set) => set.contains(&t),
            EventFilter::Matching(f) => f(t),
        }
    }
}

impl From<EventType> for EventFilter {
    fn from(t: EventType) -> Self {
        EventFilter::Types(BTreeSet::from([t]))
    }
}

impl<const N: usize> From<[EventType; N]> for EventFilter {
    fn from(ts: [EventType; N]) -> Self {
        EventFilter::Types(ts.into_iter().collect())
    }
}

impl From<&[EventType]> for EventFilter {
    fn from(ts: &[EventType]) -> Self {
        EventFilter::Types(ts.iter().copied().collect())
    }
}

impl From<fn(EventType) -> bool> for EventFilter {
    fn from(f: fn(EventType) -> bool) -> Self {
        EventFilter::Matching(f)
    }
}

/// One event handed to one subscriber. Call [`Delivery::ack`] with the handling outcome;
/// dropping it unacked tells the publisher the subscriber went away (`BusError::Closed`).
/// Subscribers share the event: a `probe.completed` of a whole job goes to five of them in
/// `netmon up`, and copying it for each was 2 % of the steady state's CPU in perf.
#[derive(Debug)]
pub struct Delivery {
    envelope: Arc<Envelope>,
    ack: Ack,
}

impl Delivery {
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    pub fn ack(self, outcome: Result<(), String>) {
        self.ack.send(outcome);
    }

    pub fn into_parts(self) -> (Arc<Envelope>, Ack) {
        (self.envelope, self.ack)
    }
}

/// The reply half of a [`Delivery`].
#[derive(Debug)]
pub struct Ack(oneshot::Sender<Result<(), String>>);

impl Ack {
    pub fn send(self, outcome: Result<(), String>) {
        // The publisher may have gone (cancelled); nobody is left to tell.
        let _ = self.0.send(outcome);
    }
}

/// The receiving end of a subscription.
#[derive(Debug)]
pub struct Subscription {
    name: Arc<str>,
    rx: mpsc::Receiver<Delivery>,
}

impl Subscription {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next delivery; `None` once the bus is shut down and the queue is drained.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// Deliveries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }
}

struct Subscriber {
    name: Arc<str>,
    filter: EventFilter,
    tx: mpsc::Sender<Delivery>,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    closed: AtomicBool,
}

/// A bounded, acknowledged in-process [`EventBus`]. Clones share the same subscribers.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a subscriber that receives events matching `filter`, at most `capacity`
    /// (at least 1) queued at a time. Subscribing after [`MemoryBus::shutdown`] returns a
    /// subscription that yields nothing.
    pub fn subscribe(
        &self,
        name: &str,
        filter: impl Into<EventFilter>,
        capacity: usize,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let name: Arc<str> = Arc::from(name);
        if !self.inner.closed.load(Ordering::Acquire) {
            self.subscribers_mut().push(Subscriber {
                name: name.clone(),
                filter: filter.into(),
                tx,
            });
        }
        Subscription { name, rx }
    }

    /// Stops accepting events: `publish` then fails with `Closed`, and each subscription's
    /// `recv` returns `None` once its queue is drained, so consumers finish and exit.
    pub fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.subscribers_mut().clear();
    }

    pub fn is_shut_down(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    // A panic while holding the lock cannot leave the list half-updated (push/clear/clone
    // only), so a poisoned lock is safe to keep using.
    fn subscribers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Subscriber>> {
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn matching(&self, t: EventType) -> Vec<(Arc<str>, mpsc::Sender<Delivery>)> {
        let subs = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        subs.iter()
            .filter(|s| s.filter.matches(t))
            .map(|s| (s.name.clone(), s.tx.clone()))
            .collect()
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    /// Sends every event to every matching subscriber (waiting for queue space), then waits for
    /// all their acks. `Ok` only if every one succeeded; otherwise `Closed` if a subscriber is
    /// gone, else `Handler` with every failure reason. Events no subscriber wants are `Ok`.
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        if self.is_shut_down() {
            return Err(BusError::Closed);
        }
        let mut pending = Vec::new();
        let mut closed = false;
        'events: for envelope in events {
            let envelope = Arc::new(envelope);
            let targets = self.matching(envelope.event_type());
            if targets.is_empty() {
                tracing::debug!(
                    event_id = %envelope.id,
                    event_type = envelope.event_type().as_str(),
                    "no subscriber for event"
                );
                continue;
            }
            for (name, tx) in targets {
                let (ack_tx, ack_rx) = oneshot::channel();
                let delivery = Delivery {
                    envelope: Arc::clone(&envelope),
                    ack: Ack(ack_tx),
                };
                if tx.send(delivery).await.is_err() {
                    tracing::warn!(subscriber = %name, event_id = %envelope.id, "subscriber is gone");
                    closed = true;
                    break 'events;
                }
                pending.push((name, envelope.id.clone(), ack_rx));
            }
        }
        // Wait for everything already handed out, even after a failure, so no handler is still
        // running on an event the caller will retry.
        let mut failures = Vec::new();
        for (name, id, ack) in pending {
            match ack.await {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => failures.push(format!("{name} failed on {id}: {reason}")),
                Err(_) => {
                    tracing::warn!(subscriber = %name, event_id = %id, "delivery dropped unacked");
                    closed = true;
                }
            }
        }
        if closed {
            Err(BusError::Closed)
        } else if !failures.is_empty() {
            Err(BusError::Handler(failures.join("; ")))
        } else {
            Ok(())
        }
    }
}

/// Processes a subscription's deliveries with at most `concurrency` (at least 1) handlers
/// running, acking each with the handler's outcome. A panicking handler is acked as a failure.
/// The task ends once the bus is shut down and every received delivery has been handled.
///
/// A delivery is taken from the queue only when a slot is free, so the queue's capacity keeps
/// pushing back on publishers.
pub fn spawn_consumer<F, Fut>(
    mut subscription: Subscription,
    concurrency: usize,
    handler: F,
) -> JoinHandle<()>
where
    F: Fn(Arc<Envelope>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    tokio::spawn(async move {
        let mut running = JoinSet::new();
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            while running.try_join_next().is_some() {}
            let Some(delivery) = subscription.recv().await else {
                break;
            };
            let (envelope, ack) = delivery.into_parts();
            let (handler, name) = (handler.clone(), subscription.name.clone());
            running.spawn(async move {
                let id = envelope.id.clone();
                // A nested task turns a panic into a JoinError we can ack, instead of a dropped
                // ack that would read as "subscriber gone".
                let outcome = match tokio::spawn(async move { handler(envelope).await }).await {
                    Ok(outcome) => outcome,
                    Err(e) if e.is_panic() => Err("handler panicked".to_owned()),
                    Err(e) => Err(format!("handler cancelled: {e}")),
                };
                if let Err(reason) = &outcome {
                    tracing::warn!(subscriber = %name, event_id = %id, %reason, "event handler failed");
                }
                ack.send(outcome);
                drop(slot);
            });
        }
        while running.join_next().await.is_some() {}
    })
}
