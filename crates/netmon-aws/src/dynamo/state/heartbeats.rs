//! `HeartbeatStore`: the latest ping of every heartbeat target in one partition,
//! `pk=PING, sk=<tenant>#<target>`, so `last_pings()` is one (paginated) Query. Items are
//! ~100 bytes: 10,000 heartbeat targets are ~1 MB, 250 read units a strongly consistent read.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::ports::{HeartbeatStore, PingKind, PingRecord, StoreError};

use super::codec::{Item, fmt_time, get_s, key, parse_time, s};
use super::error;
use super::{DynamoStateStore, PING_PK, ping_sk};

const A_TENANT: &str = "tenant";
const A_TARGET: &str = "target";
const A_AT: &str = "at";
const A_KIND: &str = "kind";

fn kind_str(kind: PingKind) -> &'static str {
    match kind {
        PingKind::Success => "success",
        PingKind::Start => "start",
        PingKind::Fail => "fail",
    }
}

fn ping_from_item(item: &Item) -> Result<PingRecord, StoreError> {
    let sk = get_s(item, crate::resources::SK, "ping item")?;
    let what = format!("ping {sk}");
    Ok(PingRecord {
        tenant: TenantId::parse(get_s(item, A_TENANT, &what)?)
            .map_err(|e| StoreError::Corrupt(format!("{what}: bad tenant: {e}")))?,
        target: TargetId::parse(get_s(item, A_TARGET, &what)?)
            .map_err(|e| StoreError::Corrupt(format!("{what}: bad target id: {e}")))?,
        at: parse_time(&what, get_s(item, A_AT, &what)?)?,
        kind: match get_s(item, A_KIND, &what)? {
            "success" => PingKind::Success,
            "start" => PingKind::Start,
            "fail" => PingKind::Fail,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "{what}: unknown kind {other:?}"
                )));
            }
        },
    })
}

#[async_trait]
impl HeartbeatStore for DynamoStateStore {
    /// One conditional PutItem: the newest ping wins, a slower request carrying an older one
    /// changes nothing (`at` strings sort in time order).
    async fn record_ping(&self, ping: &PingRecord) -> Result<(), StoreError> {
        let at = fmt_time(ping.at);
        let mut item = key(PING_PK, ping_sk(&ping.tenant, &ping.target));
        item.insert(A_TENANT.to_owned(), s(ping.tenant.as_str()));
        item.insert(A_TARGET.to_owned(), s(ping.target.as_str()));
        item.insert(A_AT.to_owned(), s(at.as_str()));
        item.insert(A_KIND.to_owned(), s(kind_str(ping.kind)));
        let sent = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #at <= :at")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#at", A_AT)
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(error::sdk("PutItem ping", e)),
        }
    }

    /// Strongly consistent: a stale read could report a job that just pinged as overdue, and
    /// false alarms are what monitoring users hate most.
    async fn last_pings(&self) -> Result<Vec<PingRecord>, StoreError> {
        let query = self.partition_query(PING_PK, true);
        let items = self.query_all("Query pings", query, None).await?;
        items.iter().map(ping_from_item).collect()
    }
}
