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
/// `probe.completed` on the bus, resolves them. A call that ends without its reply (the client
/// went away and its handler was dropped, or it timed out) tells the probe worker through
/// [`InProcessRpc::caller_gone`], so the job stops instead of running for no one.
pub struct InProcessRpc {
    queue: Arc<dyn JobQueue>,
    pending: Mutex<HashMap<String, Waiting>>,
}

struct Waiting {
    reply: oneshot::Sender<RpcReply>,
    /// Resolves (with an error) once the call's end drops its sender; taken by the worker.
    gone: Option<oneshot::Receiver<()>>,
}

/// Held by a call while it waits: however the call ends (answered, timed out, dropped), its
/// entry goes and the worker learns the caller is gone.
struct Registration<'a> {
    rpc: &'a InProcessRpc,
    id: String,
    _alive: oneshot::Sender<()>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.rpc.forget(&self.id);
    }
}

impl InProcessRpc {
    pub fn new(queue: Arc<dyn JobQueue>) -> Self {
        Self {
            queue,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `reply` to the caller waiting for it; false if none is (any more).
    pub fn resolve(&self, reply: RpcReply) -> bool {
        let waiter = self.pending().remove(&reply.correlation_id);
        waiter.is_some_and(|w| w.reply.send(reply).is_ok())
    }

    /// For the bus subscriber: resolves the call an event answers, if any.
    pub fn observe(&self, env: &Envelope, now: DateTime<Utc>) {
        if let Some(reply) = reply_for(env, now) {
            self.resolve(reply);
        }
    }

    /// For the probe worker running the job of call `correlation_id`: resolves once that call
    /// has ended without waiting any more (at once if it already has). Once per call.
    pub fn caller_gone(&self, correlation_id: &str) -> impl Future<Output = ()> + Send + 'static {
        let gone = self
            .pending()
            .get_mut(correlation_id)
            .and_then(|w| w.gone.take());
        async move {
            if let Some(gone) = gone {
                let _ = gone.await;
            }
        }
    }

    /// Calls still waiting for their reply.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.pending().len()
    }

    fn forget(&self, id: &str) {
        self.pending().remove(id);
    }
}

#[async_trait]
impl EventRpc for InProcessRpc {
    async fn call(&self, mut job: ProbeJob, timeout: Duration) -> Result<RpcReply, RpcError> {
        let id = new_correlation_id();
        job.correlation_id = Some(id.clone());
        let (tx, rx) = oneshot::channel();
        let (alive, gone) = oneshot::channel();
        // Registered before sending: the reply may arrive before `enqueue` returns.
        self.pending().insert(
            id.clone(),
            Waiting {
                reply: tx,
                gone: Some(gone),
            },
        );
        let _registered = Registration {
            rpc: self,
            id,
            _alive: alive,
        };
        let waited = tokio::time::timeout(timeout, async {
            self.queue
                .enqueue(vec![job.clone()])
                .await
                .map_err(|e| RpcError::Send(e.to_string()))?;
            rx.await
                .map_err(|_| RpcError::Send("the reply channel closed".into()))
        })
        .await;
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

#[cfg(test)]
mod tests {
    use netmon_core::TenantId;

    use super::*;

    /// Keeps the jobs it is sent, as the probe worker's channel would.
    struct Kept(Mutex<Vec<ProbeJob>>);

    #[async_trait]
    impl JobQueue for Kept {
        async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), netmon_core::ports::BusError> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(jobs);
            Ok(())
        }
    }

    fn job() -> ProbeJob {
        ProbeJob {
            job_id: "j".into(),
            tenant: TenantId::default_tenant(),
            scheduled_for: Utc::now(),
            targets: Vec::new(),
            correlation_id: None,
            group_level: None,
            group_size: None,
        }
    }

    /// A call that times out or is dropped leaves no entry behind, and the worker holding its
    /// job learns the caller is gone.
    #[tokio::test]
    async fn a_call_that_ends_unanswered_tells_the_worker() {
        let queue = Arc::new(Kept(Mutex::new(Vec::new())));
        let rpc = Arc::new(InProcessRpc::new(queue.clone()));

        let call = tokio::spawn({
            let rpc = rpc.clone();
            async move { rpc.call(job(), Duration::from_secs(60)).await }
        });
        while queue.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            tokio::task::yield_now().await;
        }
        let id = queue.0.lock().unwrap_or_else(|p| p.into_inner())[0]
            .correlation_id
            .clone()
            .unwrap_or_default();
        let gone = rpc.caller_gone(&id);
        assert_eq!(rpc.waiting(), 1);
        call.abort();
        tokio::time::timeout(Duration::from_secs(5), gone)
            .await
            .expect("the worker learns the caller went away");
        assert_eq!(rpc.waiting(), 0);

        let r = rpc.call(job(), Duration::from_millis(20)).await;
        assert!(matches!(r, Err(RpcError::Timeout(_))), "{r:?}");
        assert_eq!(rpc.waiting(), 0);
        let late = queue.0.lock().unwrap_or_else(|p| p.into_inner())[1]
            .correlation_id
            .clone()
            .unwrap_or_default();
        tokio::time::timeout(Duration::from_millis(100), rpc.caller_gone(&late))
            .await
            .expect("a call already over is gone at once");
    }
}
