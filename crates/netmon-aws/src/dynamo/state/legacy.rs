//! Check states written before `CHECK#` keys sit at `STATE#<target>`. Every read that can feed a
//! commit falls back to that key for targets it did not find, and moves what it finds, so a
//! commit (which writes and conditions on the new key only) never meets a state it cannot see.
//!
//! A move is one transaction: put the new key with the same attributes, conditioned on it
//! being absent, and delete the old key at the version read. If another reader moved it first,
//! or a commit already followed the move, the new key is read instead.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::CheckState;
use netmon_core::ports::{StoreError, Versioned};

use super::checks::readable;
use super::codec::{Item, get_u64, key, n, s};
use super::error::{self, CONDITION_FAILED, TRANSACTION_CONFLICT};
use super::{
    A_VERSION, DynamoStateStore, MAX_ATTEMPTS, TxOutcome, backoff, check_sk, legacy_state_sk,
    tenant_pk,
};

impl DynamoStateStore {
    /// The states of `targets` still at their legacy keys (one `BatchGetItem`), each moved to its
    /// new key first. An item that does not decode is logged and left where it is.
    pub(super) async fn legacy_states(
        &self,
        tenant: &TenantId,
        targets: &[&TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let by_sk: HashMap<String, &TargetId> =
            targets.iter().map(|t| (legacy_state_sk(t), *t)).collect();
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for (target, item) in self.batch_get(tenant, &by_sk).await? {
            seen.insert(target);
            if readable(&item, tenant, target).is_none() {
                continue;
            }
            if let Some(moved) = self.move_state(tenant, target, item).await? {
                found.extend(readable(&moved, tenant, target).map(|v| (target.clone(), v)));
            }
        }
        // At neither key: another reader may have moved it between our two reads.
        let again: HashMap<String, &TargetId> = targets
            .iter()
            .filter(|t| !seen.contains(*t))
            .map(|t| (check_sk(t), *t))
            .collect();
        if !again.is_empty() {
            for (target, item) in self.batch_get(tenant, &again).await? {
                found.extend(readable(&item, tenant, target).map(|v| (target.clone(), v)));
            }
        }
        Ok(found)
    }

    /// Moves `legacy` (the item read at the target's legacy key) to the new key and returns the
    /// item now there: the moved one, or whatever another writer left. `None` once neither key
    /// holds a state (the target was deleted meanwhile).
    pub(super) async fn move_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        mut legacy: Item,
    ) -> Result<Option<Item>, StoreError> {
        let what = format!("check state {tenant}/{target}");
        let op = "TransactWriteItems move check state";
        let pk = tenant_pk(tenant);
        for attempt in 0..MAX_ATTEMPTS {
            let version = get_u64(&legacy, A_VERSION, &what)?;
            let mut moved = legacy.clone();
            moved.insert(crate::resources::SK.to_owned(), s(check_sk(target)));
            let put = Put::builder()
                .table_name(self.table.as_ref())
                .set_item(Some(moved.clone()))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", crate::resources::PK)
                .build()
                .map_err(|e| error::build("put moved state", e))?;
            let delete = Delete::builder()
                .table_name(self.table.as_ref())
                .set_key(Some(key(pk.clone(), legacy_state_sk(target))))
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", A_VERSION)
                .expression_attribute_values(":v", n(version))
                .build()
                .map_err(|e| error::build("delete legacy state", e))?;
            let items = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().delete(delete).build(),
            ];
            let reasons = match self.transact(op, items).await? {
                TxOutcome::Committed => return Ok(Some(moved)),
                TxOutcome::Cancelled(reasons) => reasons,
            };
            if reasons.iter().any(|r| r.code() == Some(CONDITION_FAILED)) {
                // Moved by someone else (and maybe committed since), or deleted.
                let now = self.get_item("GetItem state", pk.clone(), check_sk(target));
                if let Some(item) = now.await? {
                    return Ok(Some(item));
                }
                // Still at the old key at another version: only a writer of the old layout
                // (an alerter mid-deploy) does that. Move what is there now.
                let old =
                    self.get_item("GetItem legacy state", pk.clone(), legacy_state_sk(target));
                match old.await? {
                    Some(item) => legacy = item,
                    None => return Ok(None),
                }
            } else if reasons
                .iter()
                .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
            {
                backoff(attempt).await;
            } else {
                return Err(error::cancelled(op, &reasons));
            }
        }
        Err(StoreError::Conflict(format!(
            "{what}: gave up moving it to its new key after {MAX_ATTEMPTS} attempts"
        )))
    }

    /// The item holding a target's state: at its new key, else at its legacy key, moved.
    pub(super) async fn state_item(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<Item>, StoreError> {
        let pk = tenant_pk(tenant);
        if let Some(item) = self
            .get_item("GetItem state", pk.clone(), check_sk(target))
            .await?
        {
            return Ok(Some(item));
        }
        match self
            .get_item("GetItem legacy state", pk.clone(), legacy_state_sk(target))
            .await?
        {
            Some(item) => self.move_state(tenant, target, item).await,
            // At neither key: another reader may have moved it between the two reads.
            None => self.get_item("GetItem state", pk, check_sk(target)).await,
        }
    }
}
