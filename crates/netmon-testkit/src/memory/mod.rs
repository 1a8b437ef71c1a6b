//! [`MemoryStore`]: every store port in memory, with the semantics of the SQLite and DynamoDB
//! adapters (it passes the same behavioural suites), for unit tests of services and for
//! deterministic simulations of the pipeline.
//!
//! All data sits behind one std `Mutex`, and every port call is one critical section that never
//! spans an await: each call is atomic, as one SQLite transaction or one DynamoDB
//! `TransactWriteItems` is. A call checks everything it can refuse before it changes anything,
//! so a refused call (a version conflict) changes nothing.
//!
//! Where the suites leave behaviour open, this follows the DynamoDB adapter (the cloud's
//! behaviour): a heartbeat token names at most one target (`Conflict` otherwise), `pending`
//! returns at most 1,000 entries, a correlation id that is not a valid id is refused by
//! `put_reply` and never found by `get_reply`. It leaves out the DynamoDB size limits (item and
//! key bytes) and TTL expiry: published outbox entries, lapsed idempotency records and expired
//! replies stay (the records still decide as their `expires_at` says), and history is kept
//! whole, so `buckets` aggregates raw results exactly as the SQLite store does.
//!
//! Values are stored as clones, never encoded, so nothing read back can be corrupt. No result
//! depends on hash-map iteration order: the same calls (with [`MemoryStore::with_clock`]) give
//! the same answers on every run.
//!
//! Tests can count calls per port method ([`MemoryStore::calls`]) and make chosen calls fail
//! ([`MemoryStore::set_fault_hook`]).

mod faults;
mod ports;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use netmon_core::apikey::ApiKey;
use netmon_core::channel::Channel;
use netmon_core::events::Envelope;
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::CheckState;
use netmon_core::maintenance::MaintenanceWindow;
use netmon_core::notification::NotificationRecord;
use netmon_core::ports::{Clock, IncidentRecord, PingRecord, StoreError, Versioned};
use netmon_core::result::ProbeResult;
use netmon_core::rpc::RpcReply;
use netmon_core::target::Target;

pub use faults::{Call, Fault, Op};

/// Every store port in memory. Cheap to clone; clones share the data, the counts and the hook.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    data: Mutex<Data>,
    calls: faults::Calls,
    /// Dates outbox entries (`created_at`); the wall clock when `None`, as in the other
    /// adapters.
    clock: Option<Arc<dyn Clock>>,
    gate: Mutex<Option<Arc<GateFn>>>,
}

/// What a gate returns: a future the call awaits before it runs.
pub type Gate = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
type GateFn = dyn Fn(Op) -> Gate + Send + Sync;

/// `(tenant, id)` as strings: tenant-scoped records sort by tenant first, so one tenant's
/// records are one contiguous range ([`in_tenant`]) and no lookup can reach another tenant's.
/// Ids sort as text, as the other adapters' keys do.
type Key = (String, String);

fn key(tenant: &TenantId, id: &str) -> Key {
    (tenant.as_str().to_owned(), id.to_owned())
}

/// One tenant's records of a tenant-keyed map, in id order.
fn in_tenant<'a, V>(
    map: &'a BTreeMap<Key, V>,
    tenant: &'a TenantId,
) -> impl Iterator<Item = &'a V> + 'a {
    map.range((tenant.as_str().to_owned(), String::new())..)
        .take_while(move |((t, _), _)| t == tenant.as_str())
        .map(|(_, v)| v)
}

#[derive(Default)]
struct Data {
    targets: BTreeMap<Key, Target>,
    /// Heartbeat token → the one target holding it (DynamoDB's token index).
    tokens: HashMap<String, Key>,
    channels: BTreeMap<Key, Channel>,
    states: BTreeMap<Key, (TargetId, Versioned<CheckState>)>,
    /// By `(tenant, incident_id)`: one record per incident, upserted.
    incidents: BTreeMap<Key, IncidentRecord>,
    /// Every event ever appended, published or not, so a re-emitted id is recognised.
    outbox: HashMap<String, OutboxRecord>,
    /// Pending event ids by append order.
    pending: BTreeMap<u64, String>,
    next_seq: u64,
    idempotency: HashMap<String, IdemRecord>,
    /// Per `(tenant, target)`, results by (start, location): the order `results_since`
    /// returns, and the identity that makes a redelivered result a no-op.
    results: BTreeMap<Key, BTreeMap<(DateTime<Utc>, String), ProbeResult>>,
    pings: BTreeMap<Key, PingRecord>,
    keys: BTreeMap<String, ApiKey>,
    windows: BTreeMap<Key, MaintenanceWindow>,
    /// By correlation id. Expiry is not enforced (DynamoDB's TTL is lazy too).
    replies: HashMap<String, RpcReply>,
    /// By `(tenant, "<incident>#<event>#<channel>")`.
    notifications: BTreeMap<Key, NotificationRecord>,
}

struct OutboxRecord {
    /// Its key in `Data::pending` while unpublished.
    seq: u64,
    envelope: Envelope,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdemStatus {
    InProgress,
    Done,
}

struct IdemRecord {
    status: IdemStatus,
    /// The lease's end while in progress, the keep's end once done.
    expires_at: DateTime<Utc>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose outbox entry times come from `clock` (a simulation's virtual clock)
    /// instead of the wall clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock: Some(clock),
                ..Inner::default()
            }),
        }
    }

    /// Consults `hook` on every later call, before it runs. The hook must not call the store's
    /// port methods (it runs inside them); reading [`MemoryStore::calls`] is fine.
    pub fn set_fault_hook(&self, hook: impl Fn(Call) -> Fault + Send + Sync + 'static) {
        self.inner.calls.set_hook(Some(Arc::new(hook)));
    }

    pub fn clear_fault_hook(&self) {
        self.inner.calls.set_hook(None);
    }

    /// How many times `op` was called (failed and faulted calls included).
    pub fn calls(&self, op: Op) -> u64 {
        self.inner.calls.count(op)
    }

    /// Calls per method, methods never called left out.
    pub fn call_counts(&self) -> BTreeMap<Op, u64> {
        self.inner.calls.counts()
    }

    /// Calls of methods that may write ([`Op::is_write`]).
    pub fn write_calls(&self) -> u64 {
        self.sum_calls(Op::is_write)
    }

    /// Calls of methods that only read.
    pub fn read_calls(&self) -> u64 {
        self.sum_calls(|op| !op.is_write())
    }

    fn sum_calls(&self, which: impl Fn(Op) -> bool) -> u64 {
        self.call_counts()
            .into_iter()
            .filter(|(op, _)| which(*op))
            .map(|(_, n)| n)
            .sum()
    }

    /// Zeroes the counts; [`Call::nth`] starts again at 1.
    pub fn reset_calls(&self) {
        self.inner.calls.reset();
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.as_ref().map_or_else(Utc::now, |c| c.now())
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic inside a critical section can only come from a bug here, and every call
        // validates before it mutates; carry on rather than poison every later test step.
        self.inner.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Awaits `gate` at the start of every later call, before the call is counted or offered to
    /// the fault hook: a simulation suspends there, to interleave concurrent invocations and to
    /// crash one at any port call (a gate that never resolves).
    pub fn set_gate(&self, gate: impl Fn(Op) -> Gate + Send + Sync + 'static) {
        *self.inner.gate.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(gate));
    }

    /// One port call: gated, counted, offered to the fault hook, then run under the lock.
    async fn run<T>(
        &self,
        op: Op,
        f: impl FnOnce(&mut Data) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let gate = self
            .inner
            .gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(gate) = gate {
            gate(op).await;
        }
        let fault = self.inner.calls.begin(op);
        if fault == Fault::Before {
            return Err(StoreError::Unavailable(format!(
                "injected fault before {op}"
            )));
        }
        let out = f(&mut self.lock());
        if fault == Fault::After {
            // The response is lost whatever it was: the caller cannot tell what happened.
            return Err(StoreError::Unavailable(format!(
                "injected fault after {op}"
            )));
        }
        out
    }
}

/// `t + d`, saturating at the ends of time (a huge lease never wraps into the past).
fn plus(t: DateTime<Utc>, d: chrono::Duration) -> DateTime<Utc> {
    t.checked_add_signed(d)
        .unwrap_or(if d < chrono::Duration::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_saturates() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        assert_eq!(
            plus(t, chrono::Duration::seconds(5)),
            t + chrono::Duration::seconds(5)
        );
        assert_eq!(plus(t, chrono::Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(plus(t, chrono::Duration::MIN), DateTime::<Utc>::MIN_UTC);
    }
}
