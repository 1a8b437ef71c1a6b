//! EventRPC: request/response over the event bus. The request is a probe job carrying a fresh
//! correlation id; the reply is the `probe.completed` with that id, delivered as an
//! [`RpcReply`]: in one process through a oneshot resolved by a bus subscriber
//! ([`InProcessRpc`]), in the cloud through a reply record that the alerter writes and the
//! caller polls ([`PolledRpc`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_core::events::{Envelope, Event};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{EventRpc, JobQueue, ReplyStore, RpcError};
use netmon_core::result::ProbeResult;
use netmon_core::rpc::{RpcOutcome, RpcReply};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// How long a reply record is kept: far longer than any caller waits.
pub(crate) const REPLY_KEEP: chrono::Duration = chrono::Duration::minutes(10);

/// The body of a successful "check now" reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReply {
    pub results: Vec<ProbeResult>,
}

pub fn new_correlation_id() -> String {
    format!("check-{}", uuid::Uuid::now_v7())
}

/// The reply a `probe.completed` carrying a correlation id answers with; `None` for any other
/// event.
pub(crate) fn reply_for(env: &Envelope, now: DateTime<Utc>) -> Option<RpcReply> {
    let Event::ProbeCompleted(batch) = &env.event else {
        return None;
    };
    let correlation_id = env.correlation_id.clone()?;
    let outcome = match serde_json::to_value(CheckReply {
        results: batch.results.clone(),
    }) {
        Ok(body) => RpcOutcome::Success { body },
        Err(e) => RpcOutcome::Failure {
            message: format!("the probe results could not be encoded: {e}"),
        },
    };
    Some(RpcReply {
        correlation_id,
        tenant: env.tenant.clone(),
        at: now,
        outcome,
    })
}

/// A reply for another tenant is never handed to this caller (correlation ids are random, so
/// this only guards against a bug).
fn accept(reply: RpcReply, job: &ProbeJob) -> RpcReply {
    if reply.tenant == job.tenant {
        reply
    } else {
        RpcReply {
            outcome: RpcOutcome::Failure {
                message: "the reply belonged to another tenant".into(),
            },
            tenant: job.tenant.clone(),
            ..reply
        }
    }
}

/// One process: pending calls wait on oneshots; [`InProcessRpc::observe`], subscribed to
/// `probe.completed` on the bus, resolves them.
pub struct InProcessRpc {
    queue: Arc<dyn JobQueue>,
    pending: Mutex<HashMap<String, oneshot::Sender<RpcReply>>>,
}

impl InProcessRpc {
    pub fn new(queue: Arc<dyn JobQueue>) -> Self {
        Self {
            queue,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Hands `reply` to the caller waiting for it; false if none is (any more).
    pub fn resolve(&self, reply: RpcReply) -> bool {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&reply.correlation_id);
        waiter.is_some_and(|tx| tx.send(reply).is_ok())
    }

    /// For the bus subscriber: resolves the call an event answers, if any.
    pub fn observe(&self, env: &Envelope, now: DateTime<Utc>) {
        if let Some(reply) = reply_for(env, now) {
            self.resolve(reply);
        }
    }

    fn forget(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[async_trait]
impl EventRpc for InProcessRpc {
    async fn call(&self, mut job: ProbeJob, timeout: Duration) -> Result<RpcReply, RpcError> {
        let id = new_correlation_id();
        job.correlation_id = Some(id.clone());
        let (tx, rx) = oneshot::channel();
        // Registered before sending: the reply may arrive before `enqueue` returns.
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        let waited = tokio::time::timeout(timeout, async {
            self.queue
                .enqueue(vec![job.clone()])
                .await
                .map_err(|e| RpcError::Send(e.to_string()))?;
            rx.await
                .map_err(|_| RpcError::Send("the reply channel closed".into()))
        })
        .await;
        self.forget(&id);
        match waited {
            Ok(reply) => reply.map(|r| accept(r, &job)),
            Err(_) => Err(RpcError::Timeout(timeout)),
        }
    }
}

/// The cloud: the job goes to the job queue, the alerter writes the reply record, and the
/// caller polls the record.
pub struct PolledRpc {
    queue: Arc<dyn JobQueue>,
    replies: Arc<dyn ReplyStore>,
    poll_every: Duration,
}

impl PolledRpc {
    pub fn new(queue: Arc<dyn JobQueue>, replies: Arc<dyn ReplyStore>) -> Self {
        Self {
            queue,
            replies,
            poll_every: Duration::from_millis(250),
        }
    }

    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_every = every;
        self
    }
}

#[async_trait]
impl EventRpc for PolledRpc {
    async fn call(&self, mut job: ProbeJob, timeout: Duration) -> Result<RpcReply, RpcError> {
        let id = new_correlation_id();
        job.correlation_id = Some(id.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        self.queue
            .enqueue(vec![job.clone()])
            .await
            .map_err(|e| RpcError::Send(e.to_string()))?;
        loop {
            if let Some(reply) = self.replies.get_reply(&id).await? {
                return Ok(accept(reply, &job));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(RpcError::Timeout(timeout));
            }
            tokio::time::sleep(self.poll_every.min(deadline - now)).await;
        }
    }
}
