//! `Idempotency`, Powertools-style: `pk=IDEM#<key>, sk=IDEM` with `status` (`in_progress` or
//! `done`), `expires_at` (epoch ms: the lease's end while in progress, the keep's end once done)
//! and `ttl` (epoch s) so DynamoDB removes lapsed records. TTL deletion lags by up to days, so
//! every decision compares `expires_at`, never relies on the record being gone. A claim also
//! carries `owner`, fresh per call: when the SDK retries a put whose first attempt landed but
//! whose answer was lost, the condition fails on the claim's own record, and `owner` tells that
//! apart from someone else's (otherwise the work would wait out its own lease).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::{DateTime, Utc};
use netmon_core::ports::{Claim, Idempotency, StoreError};

use super::codec::{Item, get_s, key, millis_after, n, s, ttl_from_millis};
use super::error;
use super::{DynamoStateStore, IDEM_SK, idem_pk};
use crate::resources::TTL;

const A_STATUS: &str = "status";
const A_EXPIRES: &str = "expires_at";
const A_OWNER: &str = "owner";
const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

/// Idempotency keys may come from events; error texts name the operation, not the key.
fn claim_of(item: &Item) -> Result<Claim, StoreError> {
    match get_s(item, A_STATUS, "idempotency record")? {
        DONE => Ok(Claim::Done),
        IN_PROGRESS => Ok(Claim::InProgress),
        other => Err(StoreError::Corrupt(format!(
            "idempotency record: unknown status {other:?}"
        ))),
    }
}

impl DynamoStateStore {
    fn record(&self, key_: &str, status: &str, expires_ms: i64) -> Item {
        let mut item = key(idem_pk(key_), IDEM_SK);
        item.insert(A_STATUS.to_owned(), s(status));
        item.insert(A_EXPIRES.to_owned(), n(expires_ms));
        item.insert(TTL.to_owned(), n(ttl_from_millis(expires_ms)));
        item
    }
}

#[async_trait]
impl Idempotency for DynamoStateStore {
    /// One conditional PutItem: it wins if there is no record or the record lapsed (lease or
    /// keep over). When it loses, DynamoDB returns the record that beat it (ALL_OLD), which
    /// tells `Done` from `InProgress` without a second read.
    async fn claim(
        &self,
        key_: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Claim, StoreError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let mut item = self.record(key_, IN_PROGRESS, millis_after(now, lease));
        item.insert(A_OWNER.to_owned(), s(&owner));
        let sent = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #expires <= :now")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#expires", A_EXPIRES)
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(Claim::Acquired),
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(lost)) = err.as_service_error() {
            if let Some(old) = lost.item() {
                if get_s(old, A_OWNER, "idempotency record").is_ok_and(|o| o == owner) {
                    return Ok(Claim::Acquired);
                }
                return claim_of(old);
            }
            // DynamoDB always returns the item here; a fallback read keeps a backend that
            // does not (an older emulator) correct rather than guessing.
            return match self
                .get_item("GetItem idempotency", idem_pk(key_), IDEM_SK.to_owned())
                .await?
            {
                Some(old) => claim_of(&old),
                // Deleted (released) in between: report busy, the caller retries.
                None => Ok(Claim::InProgress),
            };
        }
        Err(error::sdk("PutItem idempotency claim", err))
    }

    /// An unconditional put: completing must stick even if the lease lapsed meanwhile.
    async fn complete(
        &self,
        key_: &str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(self.record(key_, DONE, millis_after(now, keep))))
            .send()
            .await
            .map_err(|e| error::sdk("PutItem idempotency complete", e))?;
        Ok(())
    }

    /// Deletes the record only while it is in progress: a late release must not undo
    /// completed work.
    async fn release(&self, key_: &str) -> Result<(), StoreError> {
        let sent = self
            .client
            .delete_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(idem_pk(key_), IDEM_SK)))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", A_STATUS)
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(error::sdk("DeleteItem idempotency release", e)),
        }
    }
}
