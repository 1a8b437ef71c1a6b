//! `TargetStore`: target items, the heartbeat token index and the packed schedule shards.
//!
//! A target lives at `pk=T#<tenant>, sk=TARGET#<id>` and, byte for byte the same body, as one
//! attribute `T#<tenant>#<id>` of its schedule shard `pk=SCHED, sk=<shard>`. The scheduler
//! reads the shards (one paginated Query over a single partition) instead of every target
//! item, and never scans the table.
//!
//! Every put/delete changes the target item, its shard attribute and its token index item in
//! one transaction. The shard is changed in place (`SET`/`REMOVE` of the target's own
//! attribute, `ADD` to a byte counter), so writers of different targets in one shard never
//! have to read the shard or agree on its version; the target item's own version condition
//! makes the read-then-write of each target safe. DynamoDB still serialises transactions on one
//! item, and a `TransactionConflict` is retried with backoff.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::ports::{Expect, Page, PageRequest, StoreError, TargetStore};
use netmon_core::target::{CheckSpec, Target};

use super::codec::{Item, decode, encode, get_s, get_u64, key, n, s};
use super::error::{self, CONDITION_FAILED, TRANSACTION_CONFLICT, reason_is};
use super::{
    A_BODY, A_VERSION, DEFAULT_PAGE, DynamoStateStore, MAX_ATTEMPTS, MAX_PAGE, PING_PK, SCHED_PK,
    TARGET_PREFIX, TOKEN_SK, TxOutcome, backoff, check_sk, legacy_state_sk, ping_sk, shard_sk,
    target_sk, tenant_pk, token_pk,
};

/// Schedule shards. More shards make each shard item smaller, so a target edit (which rewrites
/// its shard: write units follow the item size) is cheaper and the capacity larger; the tick's
/// read cost depends only on the total bytes. Changing this re-homes every target: it needs a
/// migration.
pub const SHARDS: u32 = 1024;

/// Bytes of target entries (attribute name + JSON body) one shard may hold. DynamoDB's item
/// limit is 400 KB; the rest is headroom for the key and counters and for estimation slack.
/// A put that would cross it is refused, so a shard is never left unwritable.
pub const SHARD_BUDGET_BYTES: i64 = 350_000;

/// Shard attributes holding targets start with this; the rest are bookkeeping.
pub(super) const ENTRY_PREFIX: &str = "T#";

/// Token index keys are partition keys (at most 2,048 bytes); longer tokens are refused.
const MAX_TOKEN_BYTES: usize = 1_024;

const A_BYTES: &str = "bytes";
const A_TENANT: &str = "tenant";
const A_TARGET: &str = "target";

fn entry_name(tenant: &TenantId, id: &TargetId) -> String {
    format!("{ENTRY_PREFIX}{tenant}#{id}")
}

/// What an entry adds to its shard item's size (DynamoDB counts name and value bytes).
fn entry_bytes(name: &str, body: &str) -> i64 {
    i64::try_from(name.len() + body.len()).unwrap_or(i64::MAX)
}

fn token_of(t: &Target) -> Option<&str> {
    match &t.spec.check {
        CheckSpec::Heartbeat(hb) => hb.token.as_deref(),
        _ => None,
    }
}

/// A stored target and the exact body string its shard entry holds.
struct Current {
    target: Target,
    body: String,
}

fn target_from_item(item: &Item, what: &str) -> Result<Current, StoreError> {
    let body = get_s(item, A_BODY, what)?.to_owned();
    let mut target: Target = decode(what, &body)?;
    // The attribute is what conditions check, so it is authoritative over the body's copy.
    target.version = get_u64(item, A_VERSION, what)?;
    Ok(Current { target, body })
}

/// A page cursor as a sort key bound. Cursors are ids we returned, but they arrive from API
/// callers: one longer than any id (64 bytes) compares against ids exactly like its first ~100
/// bytes do, and cutting it keeps the key within DynamoDB's limits.
fn cursor_bound(after: &str) -> String {
    let mut end = after.len().min(100);
    while !after.is_char_boundary(end) {
        end -= 1;
    }
    format!("{TARGET_PREFIX}{}", &after[..end])
}

impl DynamoStateStore {
    async fn read_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<Option<Current>, StoreError> {
        let item = self
            .get_item("GetItem target", tenant_pk(tenant), target_sk(id))
            .await?;
        item.map(|i| target_from_item(&i, &format!("target {tenant}/{id}")))
            .transpose()
    }

    fn shard_update(
        &self,
        tenant: &TenantId,
        id: &TargetId,
        body: Option<&str>,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let shard = Self::shard_of(tenant, id);
        let mut update = Update::builder()
            .table_name(self.table.as_ref())
            .set_key(Some(key(SCHED_PK, shard_sk(shard))))
            .expression_attribute_names("#t", entry_name(tenant, id))
            .expression_attribute_names("#bytes", A_BYTES)
            .expression_attribute_values(":delta", n(delta));
        update = match body {
            Some(body) => update
                .update_expression("SET #t = :body ADD #bytes :delta")
                .expression_attribute_values(":body", s(body)),
            None => update.update_expression("REMOVE #t ADD #bytes :delta"),
        };
        if delta > 0 {
            // The byte budget check; a fresh shard has no counter yet.
            update = update
                .condition_expression("attribute_not_exists(#bytes) OR #bytes <= :room")
                .expression_attribute_values(":room", n(SHARD_BUDGET_BYTES - delta));
        }
        let update = update
            .build()
            .map_err(|e| error::build("shard update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn target_condition(&self, current: Option<&Current>) -> (String, Option<u64>) {
        match current {
            Some(c) => ("#v = :v".to_owned(), Some(c.target.version)),
            None => ("attribute_not_exists(#pk)".to_owned(), None),
        }
    }

    /// One attempt at writing `target` over `current`; `Ok(None)` means retry.
    async fn try_put_target(
        &self,
        target: &Target,
        current: Option<&Current>,
        expect: Expect,
    ) -> Result<Option<Target>, StoreError> {
        let (tenant, id) = (&target.tenant, target.id());
        let mut stored = target.clone();
        stored.version = current.map_or(1, |c| c.target.version + 1);
        let body = encode("target", &stored)?;
        let name = entry_name(tenant, id);
        let new_bytes = entry_bytes(&name, &body);
        if new_bytes > SHARD_BUDGET_BYTES {
            return Err(StoreError::Corrupt(format!(
                "target {tenant}/{id} is {new_bytes} bytes encoded; one target may use at most \
                 {SHARD_BUDGET_BYTES} (see docs/dynamodb.md, capacity)"
            )));
        }
        let old_bytes = current.map_or(0, |c| entry_bytes(&name, &c.body));
        let new_token = token_of(target);
        if new_token.is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
            return Err(StoreError::Corrupt(format!(
                "target {tenant}/{id}: heartbeat token longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let old_token = current.and_then(|c| token_of(&c.target));

        let mut item = key(tenant_pk(tenant), target_sk(id));
        item.insert(A_VERSION.to_owned(), n(stored.version));
        item.insert(A_BODY.to_owned(), s(body.as_str()));
        let (condition, version) = self.target_condition(current);
        let mut put = Put::builder()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .condition_expression(condition);
        put = match version {
            Some(v) => put
                .expression_attribute_names("#v", A_VERSION)
                .expression_attribute_values(":v", n(v)),
            None => put.expression_attribute_names("#pk", crate::resources::PK),
        };
        let put = put.build().map_err(|e| error::build("put target", e))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.shard_update(tenant, id, Some(&body), new_bytes - old_bytes)?,
        ];
        // The index item is (re)written on every put of a heartbeat target, so a missing one
        // heals; refused if another target holds the token, so a token names one target.
        let token_index = match new_token {
            Some(tok) => {
                let mut idx = key(token_pk(tok), TOKEN_SK);
                idx.insert(A_TENANT.to_owned(), s(tenant.as_str()));
                idx.insert(A_TARGET.to_owned(), s(id.as_str()));
                let put = Put::builder()
                    .table_name(self.table.as_ref())
                    .set_item(Some(idx))
                    .condition_expression(
                        "attribute_not_exists(#pk) OR (#tenant = :tenant AND #target = :target)",
                    )
                    .expression_attribute_names("#pk", crate::resources::PK)
                    .expression_attribute_names("#tenant", A_TENANT)
                    .expression_attribute_names("#target", A_TARGET)
                    .expression_attribute_values(":tenant", s(tenant.as_str()))
                    .expression_attribute_values(":target", s(id.as_str()))
                    .build()
                    .map_err(|e| error::build("put token index", e))?;
                items.push(TransactWriteItem::builder().put(put).build());
                Some(items.len() - 1)
            }
            None => None,
        };
        if let Some(old) = old_token
            && Some(old) != new_token
        {
            items.push(self.delete_item(token_pk(old), TOKEN_SK.to_owned())?);
        }
        items.push(self.stripe_bump(tenant, id)?);

        match self
            .transact("TransactWriteItems put_target", items)
            .await?
        {
            TxOutcome::Committed => Ok(Some(stored)),
            TxOutcome::Cancelled(reasons) => {
                if reason_is(&reasons, 0, CONDITION_FAILED) {
                    // Changed since we read it: last writer wins re-reads, the others conflict.
                    return match expect {
                        Expect::Any => Ok(None),
                        _ => Err(StoreError::Conflict(format!(
                            "target {tenant}/{id} changed concurrently"
                        ))),
                    };
                }
                if reason_is(&reasons, 1, CONDITION_FAILED) {
                    return Err(StoreError::Corrupt(format!(
                        "schedule shard {:04} is full: target {tenant}/{id} ({new_bytes} bytes) \
                         would take it past its {SHARD_BUDGET_BYTES} byte budget (see \
                         docs/dynamodb.md, capacity)",
                        Self::shard_of(tenant, id)
                    )));
                }
                if token_index.is_some_and(|i| reason_is(&reasons, i, CONDITION_FAILED)) {
                    return Err(StoreError::Conflict(format!(
                        "target {tenant}/{id}: its heartbeat token is already used by another \
                         target"
                    )));
                }
                if reasons
                    .iter()
                    .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
                {
                    return Ok(None);
                }
                Err(error::cancelled("TransactWriteItems put_target", &reasons))
            }
        }
    }

    /// One attempt at deleting; `Ok(None)` means retry.
    async fn try_delete_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
        current: Option<&Current>,
    ) -> Result<Option<bool>, StoreError> {
        // State and last ping belong to the target: a re-created target starts fresh.
        // Incidents stay; they are records of what happened.
        let mut items = vec![
            self.delete_item(tenant_pk(tenant), check_sk(id))?,
            self.delete_item(tenant_pk(tenant), legacy_state_sk(id))?,
            self.delete_item(PING_PK.to_owned(), ping_sk(tenant, id))?,
        ];
        let Some(current) = current else {
            // No target, but a check state may exist without one (as in the embedded store).
            return match self
                .transact("TransactWriteItems delete_target", items)
                .await?
            {
                TxOutcome::Committed => Ok(Some(false)),
                TxOutcome::Cancelled(reasons) => {
                    if reasons
                        .iter()
                        .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
                    {
                        Ok(None)
                    } else {
                        Err(error::cancelled(
                            "TransactWriteItems delete_target",
                            &reasons,
                        ))
                    }
                }
            };
        };
        let delete = Delete::builder()
            .table_name(self.table.as_ref())
            .set_key(Some(key(tenant_pk(tenant), target_sk(id))))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", A_VERSION)
            .expression_attribute_values(":v", n(current.target.version))
            .build()
            .map_err(|e| error::build("delete target", e))?;
        items.insert(0, TransactWriteItem::builder().delete(delete).build());
        let name = entry_name(tenant, id);
        items.push(self.shard_update(tenant, id, None, -entry_bytes(&name, &current.body))?);
        if let Some(token) = token_of(&current.target) {
            items.push(self.delete_item(token_pk(token), TOKEN_SK.to_owned())?);
        }
        items.push(self.stripe_bump(tenant, id)?);
        match self
            .transact("TransactWriteItems delete_target", items)
            .await?
        {
            TxOutcome::Committed => Ok(Some(true)),
            TxOutcome::Cancelled(reasons) => {
                if reason_is(&reasons, 0, CONDITION_FAILED)
                    || reasons
                        .iter()
                        .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
                {
                    Ok(None)
                } else {
                    Err(error::cancelled(
                        "TransactWriteItems delete_target",
                        &reasons,
                    ))
                }
            }
        }
    }
}

#[async_trait]
impl TargetStore for DynamoStateStore {
    async fn get_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<Option<Target>, StoreError> {
        Ok(self.read_target(tenant, id).await?.map(|c| c.target))
    }

    async fn list_targets(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<Page<Target>, StoreError> {
        let limit = match page.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        } as usize;
        // Target ids sort as their sort keys do; everything after the cursor up to the end
        // of the TARGET# range (`$` follows `#`).
        let lo = cursor_bound(page.after.as_deref().unwrap_or(""));
        let query = self
            .range_query(tenant, lo.clone(), "TARGET$".to_owned())
            // The cursor's own item (BETWEEN is inclusive) and one more to see a next page.
            .limit(i32::try_from(limit + 2).unwrap_or(i32::MAX));
        let found = self
            .query_all("Query targets", query, Some(limit + 2))
            .await?;
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        for item in &found {
            let sk = get_s(item, crate::resources::SK, "target item")?;
            if sk == lo {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            let what = format!(
                "target {tenant}/{}",
                &sk[TARGET_PREFIX.len().min(sk.len())..]
            );
            items.push(target_from_item(item, &what)?.target);
        }
        let next = if more {
            items.last().map(|t| t.id().to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// [`Self::visit_targets`], collected and ordered by tenant, then id.
    async fn all_targets(&self) -> Result<Vec<Target>, StoreError> {
        let mut targets = Vec::new();
        self.visit_targets(&mut |t| targets.push(t)).await?;
        targets.sort_by(|a, b| (&a.tenant, a.id()).cmp(&(&b.tenant, b.id())));
        Ok(targets)
    }

    /// The schedule shards, held between visits while they fit and reread by stripe when a
    /// put or delete moved the stripe's counter (`schedule.rs`); otherwise one eventually
    /// consistent Query, each 1 MB page decoded and handed over as it arrives.
    async fn visit_targets(
        &self,
        visit: &mut (dyn FnMut(Target) + Send),
    ) -> Result<(), StoreError> {
        self.visit_schedule(visit).await
    }

    async fn put_target(&self, target: Target, expect: Expect) -> Result<Target, StoreError> {
        let (tenant, id) = (&target.tenant, target.id());
        for attempt in 0..MAX_ATTEMPTS {
            // Read first: the old token and entry size decide the index and shard updates, and
            // the transaction's version condition proves the read still holds.
            let current = self.read_target(tenant, id).await?;
            match (expect, &current) {
                (Expect::Absent, Some(_)) => {
                    return Err(StoreError::Conflict(format!(
                        "target {tenant}/{id} already exists"
                    )));
                }
                (Expect::Version(v), None) => {
                    return Err(StoreError::Conflict(format!(
                        "target {tenant}/{id} does not exist (expected version {v})"
                    )));
                }
                (Expect::Version(v), Some(c)) if c.target.version != v => {
                    return Err(StoreError::Conflict(format!(
                        "target {tenant}/{id} is at version {}, not {v}",
                        c.target.version
                    )));
                }
                _ => {}
            }
            match self
                .try_put_target(&target, current.as_ref(), expect)
                .await?
            {
                Some(stored) => return Ok(stored),
                None => backoff(attempt).await,
            }
        }
        Err(StoreError::Conflict(format!(
            "target {tenant}/{id}: gave up after {MAX_ATTEMPTS} conflicting attempts"
        )))
    }

    async fn delete_target(&self, tenant: &TenantId, id: &TargetId) -> Result<bool, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let current = self.read_target(tenant, id).await?;
            match self.try_delete_target(tenant, id, current.as_ref()).await? {
                Some(existed) => return Ok(existed),
                None => backoff(attempt).await,
            }
        }
        Err(StoreError::Conflict(format!(
            "delete target {tenant}/{id}: gave up after {MAX_ATTEMPTS} conflicting attempts"
        )))
    }

    /// One GetItem on the token index, one on the target.
    async fn find_by_heartbeat_token(&self, token: &str) -> Result<Option<Target>, StoreError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        // Error texts say "token index", never the token: it is a credential.
        let Some(idx) = self
            .get_item("GetItem token index", token_pk(token), TOKEN_SK.to_owned())
            .await?
        else {
            return Ok(None);
        };
        let what = "heartbeat token index item";
        let tenant = TenantId::parse(get_s(&idx, A_TENANT, what)?)
            .map_err(|e| StoreError::Corrupt(format!("{what}: bad tenant: {e}")))?;
        let id = TargetId::parse(get_s(&idx, A_TARGET, what)?)
            .map_err(|e| StoreError::Corrupt(format!("{what}: bad target id: {e}")))?;
        let target = self.read_target(&tenant, &id).await?.map(|c| c.target);
        // Both are written in one transaction, so they agree; checking costs nothing.
        Ok(target.filter(|t| token_of(t) == Some(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cursors_compare_like_their_prefix() {
        assert_eq!(cursor_bound("t3"), "TARGET#t3");
        let long = "z".repeat(300);
        assert_eq!(cursor_bound(&long).len(), TARGET_PREFIX.len() + 100);
        // A multi-byte character across the cut is dropped whole.
        let odd = format!("{}é{}", "a".repeat(99), "b".repeat(10));
        assert_eq!(cursor_bound(&odd), format!("TARGET#{}", "a".repeat(99)));
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        let t = TenantId::parse("acme").unwrap();
        let a = DynamoStateStore::shard_of(&t, &TargetId::parse("web").unwrap());
        assert_eq!(
            a,
            DynamoStateStore::shard_of(&t, &TargetId::parse("web").unwrap())
        );
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..2_000 {
            let s = DynamoStateStore::shard_of(&t, &TargetId::parse(format!("t{i}")).unwrap());
            assert!(s < SHARDS);
            seen.insert(s);
        }
        assert!(
            seen.len() > 800,
            "2,000 targets spread over {} shards",
            seen.len()
        );
    }
}
