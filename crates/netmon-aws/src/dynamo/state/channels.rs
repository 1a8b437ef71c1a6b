//! `ChannelStore`: `pk=T#<tenant>, sk=CHANNEL#<id>`, versioned like targets but with nothing
//! else to keep in step, so every write is one conditional UpdateItem and never a read.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use netmon_core::channel::Channel;
use netmon_core::ids::TenantId;
use netmon_core::ports::{ChannelStore, Expect, StoreError};

use super::codec::{decode, encode, get_s, get_u64, key, n, s};
use super::error;
use super::{A_BODY, A_VERSION, CHANNEL_PREFIX, DynamoStateStore, channel_sk, tenant_pk};

#[async_trait]
impl ChannelStore for DynamoStateStore {
    async fn list_channels(&self, tenant: &TenantId) -> Result<Vec<Channel>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(self.table.as_ref())
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#sk", crate::resources::SK)
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(CHANNEL_PREFIX));
        let items = self.query_all("Query channels", query, None).await?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, crate::resources::SK, "channel item")?;
                let what = format!(
                    "channel {tenant}/{}",
                    &sk[CHANNEL_PREFIX.len().min(sk.len())..]
                );
                let mut c: Channel = decode(&what, get_s(item, A_BODY, &what)?)?;
                c.version = get_u64(item, A_VERSION, &what)?;
                Ok(c)
            })
            .collect()
    }

    /// `ADD version 1` yields previous + 1 (1 when created) for every `Expect`, so even an
    /// upsert needs no read; the returned attribute is the version stored.
    async fn put_channel(
        &self,
        mut channel: Channel,
        expect: Expect,
    ) -> Result<Channel, StoreError> {
        let (tenant, id) = (channel.tenant.clone(), channel.spec.id.to_string());
        // The body's own version is ignored on read; store the one we expect when we know it.
        if let Expect::Version(v) = expect {
            channel.version = v + 1;
        } else if expect == Expect::Absent {
            channel.version = 1;
        }
        let body = encode("channel", &channel)?;
        let mut update = self
            .client
            .update_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(tenant_pk(&tenant), channel_sk(&id))))
            .update_expression("SET #body = :body ADD #v :one")
            .expression_attribute_names("#body", A_BODY)
            .expression_attribute_names("#v", A_VERSION)
            .expression_attribute_values(":body", s(body))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew);
        update = match expect {
            Expect::Absent => update
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", crate::resources::PK),
            Expect::Version(v) => update
                .condition_expression("#v = :expected")
                .expression_attribute_values(":expected", n(v)),
            Expect::Any => update,
        };
        match update.send().await {
            Ok(out) => {
                let what = format!("channel {tenant}/{id}");
                channel.version = get_u64(&out.attributes.unwrap_or_default(), A_VERSION, &what)?;
                Ok(channel)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::Conflict(match expect {
                    Expect::Absent => format!("channel {tenant}/{id} already exists"),
                    _ => format!("channel {tenant}/{id} is not at the expected version"),
                }))
            }
            Err(e) => Err(error::sdk("UpdateItem channel", e)),
        }
    }

    async fn delete_channel(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(tenant_pk(tenant), channel_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e: aws_sdk_dynamodb::error::SdkError<DeleteItemError>| {
                error::sdk("DeleteItem channel", e)
            })?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
