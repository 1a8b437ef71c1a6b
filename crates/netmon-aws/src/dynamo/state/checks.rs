//! `StateStore`: check state at `pk=T#<tenant>, sk=CHECK#<group>#<target>` (older items at
//! `STATE#<target>`, moved on first read: `legacy.rs`) and incidents in the same tenant
//! partition, committed with outbox events in one transaction.
//!
//! A state's sort key starts with its target's group at `MAX_LEVEL`, so the states of one
//! job's group are one contiguous range: `load_group_states` reads them with one Query, billed
//! on the summed size of the states (~13 a read unit) rather than 1 unit per state.
//!
//! Incidents are stored once, under `OPEN#<opened_at>#<id>` while open and under
//! `CLOSED#<opened_at>#<id>` once resolved; the upsert that changes that status puts one and
//! deletes the other in the same transaction. `list_incidents` is then a descending Query on
//! `OPEN#` (usually a handful) followed, if the limit allows, by one on `CLOSED#`: open ones
//! first, each group newest first, and closed history is never read past the limit. An
//! incident's `opened_at` is part of its key: incident ids are derived from it
//! (`netmon_core::incident::incident_id`), so it never changes for one id.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, KeysAndAttributes, Put, TransactWriteItem};
use chrono::Utc;
use netmon_core::events::Envelope;
use netmon_core::group::{Group, MAX_LEVEL};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::CheckState;
use netmon_core::ports::{Expect, IncidentRecord, StateStore, StoreError, Versioned};

use super::codec::{Item, decode, encode, fmt_time, get_s, get_u64, key, n, s};
use super::error::{self, CONDITION_FAILED, TRANSACTION_CONFLICT, reason_is};
use super::{
    A_BODY, A_VERSION, CHECK_PREFIX, CLOSED_PREFIX, DynamoStateStore, LEGACY_STATE_PREFIX,
    MAX_ATTEMPTS, OPEN_PREFIX, TxOutcome, backoff, check_range, check_sk, check_span, check_target,
    incident_sk, legacy_state_sk, tenant_pk,
};

fn state_from_item(item: &Item, what: &str) -> Result<Versioned<CheckState>, StoreError> {
    Ok(Versioned {
        value: decode(what, get_s(item, A_BODY, what)?)?,
        version: get_u64(item, A_VERSION, what)?,
    })
}

/// The state in `item`, or `None` (logged) when it does not decode: in a batch, one bad item
/// must not stop the other targets. Its target then looks stateless to the alerter, whose
/// commit is refused (the item exists) and whose re-read reports it as `Corrupt`.
pub(super) fn readable(
    item: &Item,
    tenant: &TenantId,
    target: &TargetId,
) -> Option<Versioned<CheckState>> {
    match state_from_item(item, &format!("check state {tenant}/{target}")) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(%tenant, %target, error = %e, "unreadable check state left out");
            None
        }
    }
}

impl DynamoStateStore {
    /// Put of one incident under its current status plus delete of its other-status twin.
    /// Later records for the same incident in one commit win (one action per item is all a
    /// transaction allows).
    fn incident_writes(
        &self,
        incidents: &[IncidentRecord],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut latest: Vec<&IncidentRecord> = Vec::new();
        let mut at: HashMap<(&TenantId, chrono::DateTime<Utc>, &str), usize> = HashMap::new();
        for i in incidents {
            let k = (&i.tenant, i.opened_at, i.incident_id.as_str());
            match at.get(&k) {
                Some(&pos) => latest[pos] = i,
                None => {
                    at.insert(k, latest.len());
                    latest.push(i);
                }
            }
        }
        let mut items = Vec::with_capacity(latest.len() * 2);
        for i in latest {
            let open = i.resolved_at.is_none();
            let pk = tenant_pk(&i.tenant);
            let mut item = key(pk.as_str(), incident_sk(open, i.opened_at, &i.incident_id));
            item.insert(A_BODY.to_owned(), s(encode("incident", i)?));
            let put = Put::builder()
                .table_name(self.table.as_ref())
                .set_item(Some(item))
                .build()
                .map_err(|e| error::build("put incident", e))?;
            items.push(TransactWriteItem::builder().put(put).build());
            items.push(self.delete_item(pk, incident_sk(!open, i.opened_at, &i.incident_id))?);
        }
        Ok(items)
    }

    fn state_put(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        body: &str,
        expected: Option<u64>,
        new_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(tenant_pk(tenant), check_sk(target));
        item.insert(A_VERSION.to_owned(), n(new_version));
        item.insert(A_BODY.to_owned(), s(body));
        let put = Put::builder()
            .table_name(self.table.as_ref())
            .set_item(Some(item));
        let put = match expected {
            Some(v) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", A_VERSION)
                .expression_attribute_values(":v", n(v)),
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", crate::resources::PK),
        };
        let put = put.build().map_err(|e| error::build("put state", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A new state's put also requires the legacy key to be empty: a state not yet moved there
    /// must not be shadowed by a fresh one.
    fn legacy_absent(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table.as_ref())
            .set_key(Some(key(tenant_pk(tenant), legacy_state_sk(target))))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .build()
            .map_err(|e| error::build("check legacy state absent", e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The stored version (moving a legacy item first), for last-writer-wins commits.
    async fn state_version(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<u64>, StoreError> {
        let item = self.state_item(tenant, target).await?;
        item.map(|i| get_u64(&i, A_VERSION, &format!("check state {tenant}/{target}")))
            .transpose()
    }

    /// `BatchGetItem` of the tenant's items at the sort keys of `by_sk`, strongly consistent,
    /// up to 100 keys a request; keys DynamoDB leaves unprocessed (throttling, the 16 MB
    /// response limit) are asked again after a pause. Each item comes with its target.
    pub(super) async fn batch_get<'t>(
        &self,
        tenant: &TenantId,
        by_sk: &HashMap<String, &'t TargetId>,
    ) -> Result<Vec<(&'t TargetId, Item)>, StoreError> {
        const KEYS_PER_REQUEST: usize = 100;
        let pk = tenant_pk(tenant);
        let sks: Vec<&String> = by_sk.keys().collect();
        let mut found = Vec::with_capacity(sks.len());
        for chunk in sks.chunks(KEYS_PER_REQUEST) {
            let mut keys: Vec<Item> = chunk.iter().map(|sk| key(pk.clone(), *sk)).collect();
            let mut attempt = 0;
            while !keys.is_empty() {
                if attempt == MAX_ATTEMPTS {
                    return Err(StoreError::Unavailable(format!(
                        "check states of {tenant}: {} keys still unprocessed after {MAX_ATTEMPTS} attempts",
                        keys.len()
                    )));
                }
                if attempt > 0 {
                    backoff(attempt).await;
                }
                attempt += 1;
                let ask = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("BatchGetItem states: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table.as_ref(), ask)
                    .send()
                    .await
                    .map_err(|e| error::sdk("BatchGetItem states", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(self.table.as_ref()))
                    .unwrap_or_default()
                {
                    let sk = get_s(&item, crate::resources::SK, "check state key")?;
                    let Some(target) = by_sk.get(sk) else {
                        return Err(StoreError::Corrupt(format!(
                            "BatchGetItem states of {tenant} returned {sk}, which was not asked for"
                        )));
                    };
                    found.push((*target, item));
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table.as_ref()))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    /// The states of `targets` by key: their new keys in one `BatchGetItem`, then the legacy
    /// keys of those not found.
    async fn states_by_key(
        &self,
        tenant: &TenantId,
        targets: &[&TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        // Distinct keys: BatchGetItem refuses a request that names one twice.
        let by_sk: HashMap<String, &TargetId> = targets.iter().map(|t| (check_sk(t), *t)).collect();
        let mut found = Vec::with_capacity(by_sk.len());
        let mut seen = HashSet::with_capacity(by_sk.len());
        for (target, item) in self.batch_get(tenant, &by_sk).await? {
            seen.insert(target);
            found.extend(readable(&item, tenant, target).map(|v| (target.clone(), v)));
        }
        let missing: Vec<&TargetId> = by_sk.into_values().filter(|t| !seen.contains(t)).collect();
        found.extend(self.legacy_states(tenant, &missing).await?);
        Ok(found)
    }

    pub(super) async fn query_prefix(
        &self,
        op: &str,
        tenant: &TenantId,
        prefix: &str,
        newest_first: bool,
        max: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(self.table.as_ref())
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#sk", crate::resources::SK)
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(!newest_first);
        if let Some(max) = max {
            query = query.limit(i32::try_from(max).unwrap_or(i32::MAX));
        }
        self.query_all(op, query, max).await
    }
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn load_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<Versioned<CheckState>>, StoreError> {
        let item = self.state_item(tenant, target).await?;
        item.map(|i| state_from_item(&i, &format!("check state {tenant}/{target}")))
            .transpose()
    }

    /// `BatchGetItem`s (see `batch_get`): the same read units as one `GetItem` per key, so
    /// this saves round trips, not units; `load_group_states` saves units.
    async fn load_states(
        &self,
        tenant: &TenantId,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        let targets: Vec<&TargetId> = targets.iter().collect();
        self.states_by_key(tenant, &targets).await
    }

    /// One strongly consistent Query of the group's key range (paginated), billed on the
    /// summed size of the states in it; only the asked targets' items are decoded. Asked
    /// targets not found there are looked up at their legacy keys; any outside the group (not
    /// the alerter's case) are read by key.
    async fn load_group_states(
        &self,
        tenant: &TenantId,
        group: Group,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        if check_range(group).is_none() {
            return self.load_states(tenant, targets).await;
        }
        let (inside, outside): (Vec<&TargetId>, Vec<&TargetId>) = targets
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .partition(|t| Group::of(t, group.level) == group);
        let asked: HashMap<&str, &TargetId> = inside.iter().map(|t| (t.as_str(), *t)).collect();
        // Only the span of the asked targets' finest groups: a job holding part of its group
        // (the scheduler cuts a group in finest-group order) reads about its part.
        let finest = inside.iter().map(|t| Group::of(t, MAX_LEVEL).index);
        let items = match (finest.clone().min(), finest.max()) {
            (Some(lo), Some(hi)) => {
                let (lo, hi) = check_span(lo, hi);
                let query = self.range_query(tenant, lo, hi);
                self.query_all("Query group states", query, None).await?
            }
            _ => Vec::new(),
        };
        let mut found = Vec::with_capacity(asked.len());
        let mut seen = HashSet::with_capacity(asked.len());
        for item in &items {
            let sk = item
                .get(crate::resources::SK)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str);
            let Some(&target) = sk.and_then(check_target).and_then(|id| asked.get(id)) else {
                continue;
            };
            seen.insert(target);
            found.extend(readable(item, tenant, target).map(|v| (target.clone(), v)));
        }
        let missing: Vec<&TargetId> = inside.into_iter().filter(|t| !seen.contains(t)).collect();
        found.extend(self.legacy_states(tenant, &missing).await?);
        if !outside.is_empty() {
            found.extend(self.states_by_key(tenant, &outside).await?);
        }
        Ok(found)
    }

    /// One `TransactWriteItems`: the state put with its version condition, the incident
    /// upserts and the outbox puts. Any failed condition cancels all of it, which is what makes
    /// the outbox exact, but it also means "append, ignoring ids already present" cannot be a
    /// condition that simply fails: each outbox put is conditioned on its id being new, and
    /// when the cancellation reasons show that only such puts failed (the ids exist: a retried
    /// evaluation re-emitting its event, published or not), those events are dropped and the
    /// transaction is sent again. The common case (new ids) costs no read; a failed state
    /// condition is always a `Conflict`, whatever the outbox found.
    async fn commit_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        expect: Expect,
        state: &CheckState,
        incidents: &[IncidentRecord],
        outbox: &[Envelope],
    ) -> Result<u64, StoreError> {
        let body = encode("check state", state)?;
        let incident_items = self.incident_writes(incidents)?;
        // First of each id, in commit order, as the embedded store keeps it.
        let mut events: Vec<(usize, &Envelope)> = Vec::new();
        for (seq, e) in outbox.iter().enumerate() {
            if !events.iter().any(|(_, seen)| seen.id == e.id) {
                events.push((seq, e));
            }
        }
        // Outbox order is the store's wall clock, as in the embedded store.
        let created = fmt_time(Utc::now());
        let op = "TransactWriteItems commit_state";
        for attempt in 0..MAX_ATTEMPTS {
            let expected = match expect {
                Expect::Absent => None,
                Expect::Version(v) => Some(v),
                // Last writer wins still needs the old version to return the new one.
                Expect::Any => self.state_version(tenant, target).await?,
            };
            let new_version = expected.map_or(1, |v| v + 1);
            let mut items = vec![self.state_put(tenant, target, &body, expected, new_version)?];
            if expected.is_none() {
                items.push(self.legacy_absent(tenant, target)?);
            }
            items.extend(incident_items.iter().cloned());
            let first_event = items.len();
            for (seq, e) in &events {
                items.push(self.event_put(e, &created, *seq)?);
            }
            let reasons = match self.transact(op, items).await? {
                TxOutcome::Committed => return Ok(new_version),
                TxOutcome::Cancelled(reasons) => reasons,
            };
            let state_refused = reason_is(&reasons, 0, CONDITION_FAILED)
                || (expected.is_none() && reason_is(&reasons, 1, CONDITION_FAILED));
            if state_refused {
                if expect == Expect::Any {
                    continue;
                }
                return Err(StoreError::Conflict(format!(
                    "check state {tenant}/{target} is not at the expected version ({expect:?})"
                )));
            }
            let before = events.len();
            let mut index = first_event;
            events.retain(|_| {
                let present = reason_is(&reasons, index, CONDITION_FAILED);
                index += 1;
                !present
            });
            if events.len() < before {
                continue;
            }
            if reasons
                .iter()
                .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
            {
                backoff(attempt).await;
                continue;
            }
            return Err(error::cancelled(op, &reasons));
        }
        Err(StoreError::Conflict(format!(
            "check state {tenant}/{target}: gave up after {MAX_ATTEMPTS} conflicting attempts"
        )))
    }

    /// Both key layouts (a state at both keys, only possible mid-move, counts once: the new
    /// one). Strict: an item that does not decode is `Corrupt`.
    async fn list_states(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        let mut states: HashMap<TargetId, Versioned<CheckState>> = HashMap::new();
        for (prefix, op) in [
            (LEGACY_STATE_PREFIX, "Query legacy states"),
            (CHECK_PREFIX, "Query states"),
        ] {
            for item in self.query_prefix(op, tenant, prefix, false, None).await? {
                let sk = get_s(&item, crate::resources::SK, "check state item")?;
                let id = if prefix == CHECK_PREFIX {
                    check_target(sk)
                } else {
                    sk.strip_prefix(prefix)
                };
                let id = id.unwrap_or(sk);
                let what = format!("check state {tenant}/{id}");
                let target = TargetId::parse(id)
                    .map_err(|e| StoreError::Corrupt(format!("{what}: bad target id: {e}")))?;
                let state = state_from_item(&item, &what)?;
                states.insert(target, state);
            }
        }
        let mut states: Vec<_> = states.into_iter().collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(states)
    }

    /// Open incidents first, then closed ones; each group newest (by `opened_at`) first.
    async fn list_incidents(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        let limit = limit as usize;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut items = self
            .query_prefix(
                "Query open incidents",
                tenant,
                OPEN_PREFIX,
                true,
                Some(limit),
            )
            .await?;
        items.truncate(limit);
        if items.len() < limit {
            let rest = limit - items.len();
            let mut closed = self
                .query_prefix(
                    "Query closed incidents",
                    tenant,
                    CLOSED_PREFIX,
                    true,
                    Some(rest),
                )
                .await?;
            closed.truncate(rest);
            items.extend(closed);
        }
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, crate::resources::SK, "incident item")?;
                let what = format!("incident {tenant}/{sk}");
                decode(&what, get_s(item, A_BODY, &what)?)
            })
            .collect()
    }
}
