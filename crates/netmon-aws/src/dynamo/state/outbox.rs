//! `Outbox`: one item per event at `pk=EVENT#<id>, sk=EVENT`. While unpublished it carries
//! `gsi1pk=OUTBOX, gsi1sk=<created_at>#<seq>#<id>`, so the sparse `outbox-pending` index holds
//! exactly the pending events in creation order and `pending()` is one Query on it. Publishing
//! removes those two attributes and sets `ttl`: the item stays a week so a re-emitted event id
//! is still recognised (and ignored) by `commit_state`.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use netmon_core::events::Envelope;
use netmon_core::ports::{Outbox, OutboxEntry, StoreError};

use super::codec::{decode, encode, fmt_time, get_s, key, n, parse_time, s};
use super::error;
use super::{A_BODY, DynamoStateStore, EVENT_SK, MAX_PAGE, event_pk};
use crate::resources::{OUTBOX_INDEX, OUTBOX_INDEX_PK, OUTBOX_INDEX_SK, TTL};

/// The single partition of the pending index. Incident events are rare (transitions only), far
/// below the 1,000 writes a second one index partition takes.
const PENDING: &str = "OUTBOX";
const A_CREATED: &str = "created_at";
const A_PUBLISHED: &str = "published_at";
/// Published events are kept this long so redelivered ids stay recognisable.
const KEEP_PUBLISHED: chrono::Duration = chrono::Duration::days(7);
/// UpdateItems in flight at once in `mark_published`.
const MARK_CONCURRENCY: usize = 16;

impl DynamoStateStore {
    /// The outbox item for `event`, written only if its id is new (see `commit_state`).
    /// `created` is the commit's wall-clock time and `seq` the event's place in the commit, so
    /// the index returns commits oldest first and each commit's events in order.
    pub(super) fn event_put(
        &self,
        event: &Envelope,
        created: &str,
        seq: usize,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(event_pk(&event.id), EVENT_SK);
        item.insert(A_BODY.to_owned(), s(encode("event", event)?));
        item.insert(A_CREATED.to_owned(), s(created));
        item.insert(OUTBOX_INDEX_PK.to_owned(), s(PENDING));
        item.insert(
            OUTBOX_INDEX_SK.to_owned(),
            s(format!("{created}#{seq:04}#{}", event.id)),
        );
        let put = Put::builder()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .build()
            .map_err(|e| error::build("put outbox event", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn mark_one(&self, id: &str, now: chrono::DateTime<Utc>) -> Result<(), StoreError> {
        let ttl = (now + KEEP_PUBLISHED).timestamp();
        let sent = self
            .client
            .update_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(event_pk(id), EVENT_SK)))
            .update_expression("REMOVE #gpk, #gsk SET #ttl = :ttl, #published = :now")
            // Unknown and already-published ids are no-ops, and keep their first expiry.
            .condition_expression("attribute_exists(#gpk)")
            .expression_attribute_names("#gpk", OUTBOX_INDEX_PK)
            .expression_attribute_names("#gsk", OUTBOX_INDEX_SK)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#published", A_PUBLISHED)
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":now", s(fmt_time(now)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(error::sdk("UpdateItem mark published", e)),
        }
    }
}

#[async_trait]
impl Outbox for DynamoStateStore {
    /// One Query on the sparse index (index reads are eventually consistent: an event marked
    /// published a moment ago may be offered once more, and consumers dedupe on its id).
    async fn pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PAGE) as usize;
        let query = self
            .client
            .query()
            .table_name(self.table.as_ref())
            .index_name(OUTBOX_INDEX)
            .key_condition_expression("#gpk = :pending")
            .expression_attribute_names("#gpk", OUTBOX_INDEX_PK)
            .expression_attribute_values(":pending", s(PENDING))
            .scan_index_forward(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let items = self
            .query_all("Query outbox-pending", query, Some(limit))
            .await?;
        items
            .iter()
            .take(limit)
            .map(|item| {
                let pk = get_s(item, crate::resources::PK, "outbox item")?;
                let what = format!("outbox {pk}");
                Ok(OutboxEntry {
                    envelope: decode(&what, get_s(item, A_BODY, &what)?)?,
                    created_at: parse_time(&what, get_s(item, A_CREATED, &what)?)?,
                })
            })
            .collect()
    }

    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        // Bookkeeping times are the store's wall clock, as in the embedded store.
        let now = Utc::now();
        let ids: BTreeSet<String> = event_ids.iter().cloned().collect();
        stream::iter(ids)
            .map(|id| async move { self.mark_one(&id, now).await })
            .buffer_unordered(MARK_CONCURRENCY)
            .try_collect::<()>()
            .await
    }
}
