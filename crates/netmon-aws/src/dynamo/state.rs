//! The state table: targets, channels, check state, incidents, the outbox, idempotency records,
//! heartbeat pings, schedule shards, API keys, maintenance windows, EventRPC replies and
//! notification records, all in one table keyed by `pk`/`sk` strings. Item
//! layout, access patterns and costs: docs/dynamodb.md.
//!
//! Every multi-item change is one `TransactWriteItems`, so a crash leaves it whole or absent.
//! Reads that a write decision depends on are strongly consistent; only the once-a-tick bulk
//! reads (`all_targets`, `pending` on the index) are eventually consistent.

mod channels;
mod checks;
mod codec;
mod error;
mod heartbeats;
mod idempotency;
mod keys;
mod legacy;
mod maintenance;
mod notifications;
mod outbox;
mod replies;
mod schedule;
mod targets;

pub use schedule::FULL_READ_EVERY as SCHEDULE_FULL_READ_EVERY;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, Delete, TransactWriteItem};
use chrono::DateTime;
use chrono::Utc;
use netmon_core::group::{Group, MAX_LEVEL};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::ports::StoreError;

use codec::{Item, fmt_time};

pub use targets::{SHARD_BUDGET_BYTES, SHARDS};

/// DynamoDB implementation of `TargetStore`, `ChannelStore`, `StateStore`, `Outbox`,
/// `Idempotency`, `HeartbeatStore`, `ApiKeyStore`, `MaintenanceStore` and `ReplyStore` on the
/// state table. Cheap to clone: the SDK client is
/// shared. Build the client once per process and pass it in.
#[derive(Clone)]
pub struct DynamoStateStore {
    client: Client,
    table: Arc<str>,
    /// Schedule shards held between the scheduler's visits (`schedule.rs`).
    schedule: Arc<tokio::sync::Mutex<schedule::ScheduleCache>>,
}

impl std::fmt::Debug for DynamoStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStateStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoStateStore {
    /// `table` is the state table's name (`NETMON_STATE_TABLE`).
    pub fn new(client: Client, table: String) -> Self {
        Self {
            client,
            table: table.into(),
            schedule: Arc::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The schedule shard (`0..SHARDS`) holding a target: a stable hash of tenant and id, the
    /// same FNV-1a the scheduler uses for phases.
    pub fn shard_of(tenant: &TenantId, id: &TargetId) -> u32 {
        let h = netmon_core::schedule::stable_hash(&[tenant.as_str(), id.as_str()]);
        // Lossless: the remainder is below SHARDS, a u32.
        (h % u64::from(SHARDS)) as u32
    }
}

// ---- keys ----
//
// Ids are `[A-Za-z0-9._-]`, so `#` separates key parts unambiguously.

pub(crate) fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}
pub(crate) fn target_sk(id: &TargetId) -> String {
    format!("TARGET#{id}")
}
pub(crate) fn channel_sk(id: &str) -> String {
    format!("CHANNEL#{id}")
}
/// Check states sort by their target's finest group (`CHECK#<index at MAX_LEVEL, 4 hex
/// digits>#<target>`), so the states of a job's group are one key range (`check_range`).
pub(crate) fn check_sk(target: &TargetId) -> String {
    let index = Group::of(target, MAX_LEVEL).index;
    format!("{CHECK_PREFIX}{index:04x}#{target}")
}
/// The first and last possible sort keys of `group`'s check states, inclusive (`~` sorts after
/// every id character); `None` for a group that cannot exist (index beyond its level).
pub(crate) fn check_range(group: Group) -> Option<(String, String)> {
    if group.level > MAX_LEVEL || group.index.checked_shr(u32::from(group.level)).unwrap_or(0) != 0
    {
        return None;
    }
    let finest = group.finest_range();
    Some(check_span(finest.start, finest.end - 1))
}
/// The sort keys of the check states from finest group `lo` to `hi` (indices at `MAX_LEVEL`),
/// inclusive.
pub(crate) fn check_span(lo: u32, hi: u32) -> (String, String) {
    (
        format!("{CHECK_PREFIX}{lo:04x}#"),
        format!("{CHECK_PREFIX}{hi:04x}#~"),
    )
}
/// The target id in a check state's sort key.
pub(crate) fn check_target(sk: &str) -> Option<&str> {
    let (_, id) = sk.strip_prefix(CHECK_PREFIX)?.split_once('#')?;
    Some(id)
}
/// Where check states were kept before `CHECK#`: read as a fallback and moved on first read
/// (docs/dynamodb.md, "Moving states from `STATE#<target>`").
pub(crate) fn legacy_state_sk(target: &TargetId) -> String {
    format!("{LEGACY_STATE_PREFIX}{target}")
}
pub(crate) const TARGET_PREFIX: &str = "TARGET#";
pub(crate) const CHANNEL_PREFIX: &str = "CHANNEL#";
pub(crate) const CHECK_PREFIX: &str = "CHECK#";
pub(crate) const LEGACY_STATE_PREFIX: &str = "STATE#";
pub(crate) const OPEN_PREFIX: &str = "OPEN#";
pub(crate) const CLOSED_PREFIX: &str = "CLOSED#";
/// Incidents sort by when they opened, then id: `OPEN#2026-11-22T10:00:00.000000000Z#api-…`.
pub(crate) fn incident_sk(open: bool, opened_at: DateTime<Utc>, id: &str) -> String {
    let prefix = if open { OPEN_PREFIX } else { CLOSED_PREFIX };
    format!("{prefix}{}#{id}", fmt_time(opened_at))
}
pub(crate) fn event_pk(id: &str) -> String {
    format!("EVENT#{id}")
}
pub(crate) const EVENT_SK: &str = "EVENT";
pub(crate) fn idem_pk(key: &str) -> String {
    format!("IDEM#{key}")
}
pub(crate) const IDEM_SK: &str = "IDEM";
pub(crate) fn token_pk(token: &str) -> String {
    format!("TOKEN#{token}")
}
pub(crate) const TOKEN_SK: &str = "TOKEN";
pub(crate) const PING_PK: &str = "PING";
pub(crate) fn ping_sk(tenant: &TenantId, target: &TargetId) -> String {
    format!("{tenant}#{target}")
}
pub(crate) const SCHED_PK: &str = "SCHED";
pub(crate) const KEYS_PK: &str = "APIKEY";
pub(crate) const MAINT_PREFIX: &str = "MAINT#";
pub(crate) fn maint_sk(id: &netmon_core::ids::WindowId) -> String {
    format!("{MAINT_PREFIX}{id}")
}
pub(crate) fn rpc_pk(correlation_id: &str) -> String {
    format!("RPC#{correlation_id}")
}
pub(crate) const RPC_SK: &str = "RPC";
pub(crate) fn shard_sk(shard: u32) -> String {
    format!("{shard:04}")
}

// ---- shared attribute names ----

pub(crate) const A_BODY: &str = "body";
pub(crate) const A_VERSION: &str = "version";

/// Attempts for internal retries: transaction conflicts with a concurrent writer of a shared
/// item (a schedule shard), and re-reads for last-writer-wins (`Expect::Any`) writes.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Page size when a caller passes 0, and the most one page returns (as the embedded store).
pub(crate) const DEFAULT_PAGE: u32 = 100;
pub(crate) const MAX_PAGE: u32 = 1_000;

/// How a `TransactWriteItems` ended.
pub(crate) enum TxOutcome {
    Committed,
    /// Cancelled; one reason per item, in request order.
    Cancelled(Vec<CancellationReason>),
}

impl DynamoStateStore {
    /// Runs one transaction. A fresh client request token per call makes the SDK's own retries
    /// of this exact request idempotent (a lost response does not turn into a false conflict).
    pub(crate) async fn transact(
        &self,
        op: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome, StoreError> {
        if items.len() > 100 {
            return Err(StoreError::Corrupt(format!(
                "DynamoDB {op}: {} items exceed the 100-item transaction limit",
                items.len()
            )));
        }
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(TxOutcome::Committed),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    Ok(TxOutcome::Cancelled(e.cancellation_reasons().to_vec()))
                }
                _ => Err(error::sdk(op, err)),
            },
        }
    }

    /// A Query of one whole partition (a later key condition may narrow it).
    pub(crate) fn partition_query(&self, pk: &str, consistent: bool) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table.as_ref())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_values(":pk", codec::s(pk))
            .consistent_read(consistent)
    }

    /// A strongly consistent Query of the tenant's items with sort keys from `lo` to `hi`
    /// inclusive.
    pub(crate) fn range_query(
        &self,
        tenant: &TenantId,
        lo: String,
        hi: String,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table.as_ref())
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#sk", crate::resources::SK)
            .expression_attribute_values(":pk", codec::s(tenant_pk(tenant)))
            .expression_attribute_values(":lo", codec::s(lo))
            .expression_attribute_values(":hi", codec::s(hi))
    }

    /// Every item of a Query, following pages, stopping once `max` items are in hand.
    pub(crate) async fn query_all(
        &self,
        op: &str,
        query: QueryFluentBuilder,
        max: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| error::sdk(op, e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || max.is_some_and(|m| items.len() >= m) {
                return Ok(items);
            }
        }
    }

    /// An unconditional delete inside a transaction (deleting nothing is fine).
    pub(crate) fn delete_item(
        &self,
        pk: String,
        sk: String,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table.as_ref())
            .set_key(Some(codec::key(pk, sk)))
            .build()
            .map_err(|e| error::build("delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(crate) async fn get_item(
        &self,
        op: &str,
        pk: String,
        sk: String,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .set_key(Some(codec::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| error::sdk(op, e))?;
        Ok(out.item)
    }
}

/// Before retrying after a transaction conflict: a short, jittered, growing pause so two
/// writers of one shard do not collide again in lockstep.
pub(crate) async fn backoff(attempt: u32) {
    let base = 20u64 << attempt.min(5);
    let jitter = u64::from(uuid::Uuid::new_v4().as_u128() as u16) % base.max(1);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}
