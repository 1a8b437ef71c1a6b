//! `NotificationLog`: one item per incident event and channel at
//! `pk=T#<tenant>, sk=NOTIFY#<incident id>#<event id>#<channel id>`, written by one UpdateItem
//! per attempt that never reads first (`ADD attempts`, `if_not_exists` for the first attempt's
//! time) and dropped by TTL [`NOTIFICATION_KEEP`] after the last attempt. An incident's records
//! are one Query on the prefix; a tenant's, one Query on `NOTIFY#` bounded by [`MAX_READ`].

use async_trait::async_trait;
use netmon_core::ids::TenantId;
use netmon_core::notification::NotificationRecord;
use netmon_core::ports::{NOTIFICATION_KEEP, NotificationLog, StoreError};

use super::codec::{Item, decode, encode, fmt_time, get_s, get_u64, n, parse_time, s};
use super::error;
use super::{A_BODY, DynamoStateStore, tenant_pk};
use crate::resources::TTL;

const PREFIX: &str = "NOTIFY#";
const A_ATTEMPTS: &str = "attempts";
const A_FIRST: &str = "first_attempt_at";
const A_LAST: &str = "last_attempt_at";
/// The most records one listing reads (30 days of a tenant's notifications, normally far
/// fewer); the newest of them are returned.
const MAX_READ: usize = 2_000;

fn record_of(item: &Item) -> Result<NotificationRecord, StoreError> {
    let what = format!(
        "notification {}",
        get_s(item, crate::resources::SK, "notification")?
    );
    let mut record: NotificationRecord = decode(&what, get_s(item, A_BODY, &what)?)?;
    record.attempts = u32::try_from(get_u64(item, A_ATTEMPTS, &what)?).unwrap_or(u32::MAX);
    record.first_attempt_at = parse_time(&what, get_s(item, A_FIRST, &what)?)?;
    Ok(record)
}

#[async_trait]
impl NotificationLog for DynamoStateStore {
    async fn record_attempt(
        &self,
        tenant: &TenantId,
        attempt: &NotificationRecord,
    ) -> Result<(), StoreError> {
        let (incident, event, channel) = attempt.key();
        let last = fmt_time(attempt.last_attempt_at);
        let expires = (attempt.last_attempt_at + NOTIFICATION_KEEP)
            .timestamp()
            .max(0);
        self.client
            .update_item()
            .table_name(self.table.as_ref())
            .key(crate::resources::PK, s(tenant_pk(tenant)))
            .key(
                crate::resources::SK,
                s(format!("{PREFIX}{incident}#{event}#{channel}")),
            )
            .update_expression(
                "SET #body = :body, #last = :last, #first = if_not_exists(#first, :last), \
                 #ttl = :ttl ADD #attempts :one",
            )
            .expression_attribute_names("#body", A_BODY)
            .expression_attribute_names("#last", A_LAST)
            .expression_attribute_names("#first", A_FIRST)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#attempts", A_ATTEMPTS)
            .expression_attribute_values(":body", s(encode("notification", attempt)?))
            .expression_attribute_values(":last", s(last))
            .expression_attribute_values(":ttl", n(expires))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| error::sdk("UpdateItem notification", e))?;
        Ok(())
    }

    async fn notifications(
        &self,
        tenant: &TenantId,
        incident_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let prefix = match incident_id {
            Some(incident) => format!("{PREFIX}{incident}#"),
            None => PREFIX.to_owned(),
        };
        let items = self
            .query_prefix(
                "Query notifications",
                tenant,
                &prefix,
                false,
                Some(MAX_READ),
            )
            .await?;
        let mut records: Vec<_> = items
            .iter()
            .filter_map(|item| {
                // One undecodable record (say, written by a newer version) hides only itself.
                record_of(item)
                    .map_err(|e| tracing::warn!(error = %e, "skipped a notification record"))
                    .ok()
            })
            .collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.last_attempt_at));
        records.truncate(limit);
        Ok(records)
    }
}
