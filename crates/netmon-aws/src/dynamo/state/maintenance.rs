//! `MaintenanceStore`: `pk=T#<tenant>, sk=MAINT#<id>`, versioned like channels: every write is
//! one conditional UpdateItem (`ADD version 1`), never a read. The alerter lists a tenant's
//! windows once per probe batch (one Query, usually under 1 RRU).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use netmon_core::ids::{TenantId, WindowId};
use netmon_core::maintenance::MaintenanceWindow;
use netmon_core::ports::{Expect, MaintenanceStore, StoreError};

use super::codec::{Item, decode, encode, get_s, get_u64, key, n, s};
use super::error;
use super::{A_BODY, A_VERSION, DynamoStateStore, MAINT_PREFIX, maint_sk, tenant_pk};

fn window_from_item(tenant: &TenantId, item: &Item) -> Result<MaintenanceWindow, StoreError> {
    let sk = get_s(item, crate::resources::SK, "maintenance item")?;
    let what = format!(
        "window {tenant}/{}",
        &sk[MAINT_PREFIX.len().min(sk.len())..]
    );
    let mut w: MaintenanceWindow = decode(&what, get_s(item, A_BODY, &what)?)?;
    w.version = get_u64(item, A_VERSION, &what)?;
    Ok(w)
}

#[async_trait]
impl MaintenanceStore for DynamoStateStore {
    async fn get_window(
        &self,
        tenant: &TenantId,
        id: &WindowId,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        self.get_item(
            "GetItem maintenance window",
            tenant_pk(tenant),
            maint_sk(id),
        )
        .await?
        .map(|item| window_from_item(tenant, &item))
        .transpose()
    }

    async fn list_windows(&self, tenant: &TenantId) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(self.table.as_ref())
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", crate::resources::PK)
            .expression_attribute_names("#sk", crate::resources::SK)
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(MAINT_PREFIX));
        let items = self
            .query_all("Query maintenance windows", query, None)
            .await?;
        items
            .iter()
            .map(|item| window_from_item(tenant, item))
            .collect()
    }

    async fn put_window(
        &self,
        mut window: MaintenanceWindow,
        expect: Expect,
    ) -> Result<MaintenanceWindow, StoreError> {
        let tenant = window.tenant.clone();
        let id = window.spec.id.clone();
        let what = format!("window {tenant}/{id}");
        let body = encode("maintenance window", &window)?;
        let mut update = self
            .client
            .update_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(tenant_pk(&tenant), maint_sk(&id))))
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
                window.version = get_u64(&out.attributes.unwrap_or_default(), A_VERSION, &what)?;
                Ok(window)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::Conflict(match expect {
                    Expect::Absent => format!("{what} already exists"),
                    _ => format!("{what} is not at the expected version"),
                }))
            }
            Err(e) => Err(error::sdk("UpdateItem maintenance window", e)),
        }
    }

    async fn delete_window(&self, tenant: &TenantId, id: &WindowId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(tenant_pk(tenant), maint_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| error::sdk("DeleteItem maintenance window", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
