//! `ReplyStore`: EventRPC reply records at `pk=RPC#<correlation id>, sk=RPC` with a `ttl`, so
//! DynamoDB removes them (lazily) after they expire. The alerter writes one per "check now";
//! the api polls it with strongly consistent GetItems until it appears or the call times out.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use chrono::{DateTime, Utc};
use netmon_core::ports::{ReplyStore, StoreError};
use netmon_core::rpc::{RpcReply, is_valid_correlation_id};

use super::codec::{decode, encode, get_s, key, n, s};
use super::error;
use super::{A_BODY, DynamoStateStore, RPC_SK, rpc_pk};
use crate::resources::TTL;

#[async_trait]
impl ReplyStore for DynamoStateStore {
    /// One PutItem conditioned on absence: the first reply wins.
    async fn put_reply(
        &self,
        reply: &RpcReply,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if !is_valid_correlation_id(&reply.correlation_id) {
            return Err(StoreError::Corrupt(
                "rpc reply: correlation id is not a valid key".into(),
            ));
        }
        let mut item = key(rpc_pk(&reply.correlation_id), RPC_SK);
        item.insert(A_BODY.to_owned(), s(encode("rpc reply", reply)?));
        item.insert(TTL.to_owned(), n(expires_at.timestamp().max(0)));
        let sent = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(error::sdk("PutItem rpc reply", e)),
        }
    }

    async fn get_reply(&self, correlation_id: &str) -> Result<Option<RpcReply>, StoreError> {
        if !is_valid_correlation_id(correlation_id) {
            return Ok(None);
        }
        let what = format!("rpc reply {correlation_id}");
        self.get_item(
            "GetItem rpc reply",
            rpc_pk(correlation_id),
            RPC_SK.to_owned(),
        )
        .await?
        .map(|item| decode(&what, get_s(&item, A_BODY, &what)?))
        .transpose()
    }
}
