//! `ApiKeyStore`: every key in one partition, `pk=APIKEY, sk=<key id>`, so authenticating a
//! request is one GetItem and listing keys one Query. Keys number in the tens or hundreds, far
//! below what one partition serves. `revoked_at` is an attribute of its own, so revoking is one
//! conditional UpdateItem and never a read-modify-write of the body.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use netmon_core::apikey::ApiKey;
use netmon_core::ids::TenantId;
use netmon_core::ports::{ApiKeyStore, StoreError};

use super::codec::{Item, decode, encode, fmt_time, get_s, key, parse_time, s};
use super::error;
use super::{A_BODY, DynamoStateStore, KEYS_PK};

const A_TENANT: &str = "tenant";
const A_CREATED: &str = "created_at";
const A_REVOKED: &str = "revoked_at";

fn key_from_item(item: &Item) -> Result<ApiKey, StoreError> {
    let id = get_s(item, crate::resources::SK, "api key item")?;
    // Never the body in messages: it holds the secret's hash.
    let what = format!("api key {id}");
    let mut k: ApiKey = decode(&what, get_s(item, A_BODY, &what)?)?;
    k.revoked_at = match item.get(A_REVOKED) {
        None => None,
        Some(AttributeValue::S(at)) => Some(parse_time(&what, at)?),
        Some(_) => {
            return Err(StoreError::Corrupt(format!(
                "{what}: attribute {A_REVOKED} is not a string"
            )));
        }
    };
    Ok(k)
}

#[async_trait]
impl ApiKeyStore for DynamoStateStore {
    /// One PutItem conditioned on the id being unused.
    async fn create_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        let mut body_key = k.clone();
        body_key.revoked_at = None;
        let mut item = key(KEYS_PK, k.id.as_str());
        item.insert(A_TENANT.to_owned(), s(k.tenant.as_str()));
        item.insert(A_CREATED.to_owned(), s(fmt_time(k.created_at)));
        item.insert(A_BODY.to_owned(), s(encode("api key", &body_key)?));
        if let Some(at) = k.revoked_at {
            item.insert(A_REVOKED.to_owned(), s(fmt_time(at)));
        }
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
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::Conflict(format!(
                    "api key {} already exists",
                    k.id
                )))
            }
            Err(e) => Err(error::sdk("PutItem api key", e)),
        }
    }

    async fn get_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get_item("GetItem api key", KEYS_PK.to_owned(), id.to_owned())
            .await?
            .map(|item| key_from_item(&item))
            .transpose()
    }

    /// One Query over the partition; the tenant filter and the order are applied here (a
    /// FilterExpression would cost the same read units).
    async fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        let query = self.partition_query(KEYS_PK, true);
        let items = self.query_all("Query api keys", query, None).await?;
        let mut keys = items
            .iter()
            .map(key_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        keys.retain(|k| tenant.is_none_or(|t| &k.tenant == t));
        keys.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(keys)
    }

    /// `SET revoked_at = if_not_exists(revoked_at, :at)` on an existing item: a second revoke
    /// keeps the first time, and the new image comes back without a read.
    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(KEYS_PK, id)))
            .update_expression("SET #revoked = if_not_exists(#revoked, :at)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#revoked", A_REVOKED)
            .expression_attribute_values(":at", s(fmt_time(at)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match sent {
            Ok(out) => key_from_item(&out.attributes.unwrap_or_default()).map(Some),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(error::sdk("UpdateItem api key revoke", e)),
        }
    }
}
