//! The API's store ports on [`SqliteStore`]: keys, maintenance windows, EventRPC replies,
//! notification records.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_core::apikey::ApiKey;
use netmon_core::ids::{TenantId, WindowId};
use netmon_core::maintenance::MaintenanceWindow;
use netmon_core::notification::NotificationRecord;
use netmon_core::ports::{
    ApiKeyStore, Expect, MaintenanceStore, NotificationLog, ReplyStore, StoreError,
};
use netmon_core::rpc::RpcReply;
use rusqlite::{OptionalExtension, params};

/// A tenant's maintenance windows, in no order (see `list_windows`).
const LIST_WINDOWS: &str = "SELECT id, version, body FROM maintenance WHERE tenant = ?1";

use super::{
    SqliteStore, Versioned, decode, encode, from_nanos, nanos, put_versioned, version_from_db,
};
use crate::error::Db;

fn key_from_body(id: &str, body: &str) -> Result<ApiKey, StoreError> {
    // The key id is not secret; the message never includes the body (it holds the hash).
    decode(&format!("api key {id}"), body)
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let body = encode("api key", key)?;
        let (id, tenant, created) = (key.id.clone(), key.tenant.to_string(), key.created_at);
        self.write(move |tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO api_keys (id, tenant, created_at, body) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .db()?
                .execute(params![id, tenant, nanos(created), body])
                .db()?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("api key {id} already exists")));
            }
            Ok(())
        })
        .await
    }

    async fn get_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let id = id.to_owned();
        self.call(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM api_keys WHERE id = ?1")
                .db()?
                .query_row([&id], |r| r.get(0))
                .optional()
                .db()?;
            body.map(|b| key_from_body(&id, &b)).transpose()
        })
        .await
    }

    async fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        let tenant = tenant.map(ToString::to_string);
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, body FROM api_keys WHERE ?1 IS NULL OR tenant = ?1 \
                     ORDER BY created_at, id",
                )
                .db()?;
            let rows = stmt
                .query_map([&tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .db()?;
            rows.map(|row| {
                let (id, body) = row.db()?;
                key_from_body(&id, &body)
            })
            .collect()
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            let body: Option<String> = tx
                .prepare_cached("SELECT body FROM api_keys WHERE id = ?1")
                .db()?
                .query_row([&id], |r| r.get(0))
                .optional()
                .db()?;
            let Some(body) = body else { return Ok(None) };
            let mut key = key_from_body(&id, &body)?;
            if key.revoked_at.is_none() {
                key.revoked_at = Some(at);
                tx.prepare_cached("UPDATE api_keys SET body = ?2 WHERE id = ?1")
                    .db()?
                    .execute(params![id, encode("api key", &key)?])
                    .db()?;
            }
            Ok(Some(key))
        })
        .await
    }
}

fn window_from_row(what: &str, version: i64, body: &str) -> Result<MaintenanceWindow, StoreError> {
    let mut w: MaintenanceWindow = decode(what, body)?;
    w.version = version_from_db(what, version)?;
    Ok(w)
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn get_window(
        &self,
        tenant: &TenantId,
        id: &WindowId,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.call(move |conn| {
            let row: Option<(i64, String)> = conn
                .prepare_cached(
                    "SELECT version, body FROM maintenance WHERE tenant = ?1 AND id = ?2",
                )
                .db()?
                .query_row([&tenant, &id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?;
            row.map(|(v, b)| window_from_row(&format!("window {tenant}/{id}"), v, &b))
                .transpose()
        })
        .await
    }

    async fn list_windows(&self, tenant: &TenantId) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let tenant = tenant.to_string();
        self.call(move |conn| {
            // Sorted here, not by `ORDER BY`: with it, the bundled SQLite compiled the statement
            // again on every run (its reprepare counter says so), and the alerter runs it once
            // per job: about 4 % of `netmon up`'s steady-state CPU in perf.
            let mut stmt = conn.prepare_cached(LIST_WINDOWS).db()?;
            let rows = stmt
                .query_map([&tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .db()?;
            let mut windows = rows
                .map(|row| {
                    let (id, v, body) = row.db()?;
                    window_from_row(&format!("window {tenant}/{id}"), v, &body)
                })
                .collect::<Result<Vec<_>, _>>()?;
            windows.sort_by(|a, b| a.spec.id.as_str().cmp(b.spec.id.as_str()));
            Ok(windows)
        })
        .await
    }

    async fn put_window(
        &self,
        mut window: MaintenanceWindow,
        expect: Expect,
    ) -> Result<MaintenanceWindow, StoreError> {
        self.write(move |tx| {
            let (tenant, id) = (window.tenant.to_string(), window.spec.id.to_string());
            put_versioned(tx, Versioned::Maintenance, &tenant, &id, expect, |v| {
                window.version = v;
                encode("maintenance window", &window)
            })?;
            Ok(window)
        })
        .await
    }

    async fn delete_window(&self, tenant: &TenantId, id: &WindowId) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.write(move |tx| {
            Ok(tx
                .prepare_cached("DELETE FROM maintenance WHERE tenant = ?1 AND id = ?2")
                .db()?
                .execute([&tenant, &id])
                .db()?
                > 0)
        })
        .await
    }
}

#[async_trait]
impl ReplyStore for SqliteStore {
    async fn put_reply(
        &self,
        reply: &RpcReply,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let body = encode("rpc reply", reply)?;
        let id = reply.correlation_id.clone();
        self.write(move |tx| {
            Ok(tx
                .prepare_cached(
                    "INSERT INTO rpc_replies (correlation_id, expires_at, body) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (correlation_id) DO NOTHING",
                )
                .db()?
                .execute(params![id, nanos(expires_at), body])
                .db()?
                > 0)
        })
        .await
    }

    async fn get_reply(&self, correlation_id: &str) -> Result<Option<RpcReply>, StoreError> {
        let id = correlation_id.to_owned();
        self.call(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM rpc_replies WHERE correlation_id = ?1")
                .db()?
                .query_row([&id], |r| r.get(0))
                .optional()
                .db()?;
            body.map(|b| decode(&format!("rpc reply {id}"), &b))
                .transpose()
        })
        .await
    }
}

#[async_trait]
impl NotificationLog for SqliteStore {
    async fn record_attempt(
        &self,
        tenant: &TenantId,
        attempt: &NotificationRecord,
    ) -> Result<(), StoreError> {
        let body = encode("notification", attempt)?;
        let (incident, event, channel) = attempt.key();
        let keys = [tenant.as_str(), incident, event, channel].map(str::to_owned);
        let at = nanos(attempt.last_attempt_at);
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO notifications (tenant, incident_id, event_id, channel_id, attempts, \
                 first_attempt_at, last_attempt_at, body) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6) \
                 ON CONFLICT (tenant, incident_id, event_id, channel_id) DO UPDATE SET \
                 attempts = attempts + 1, last_attempt_at = excluded.last_attempt_at, \
                 body = excluded.body",
            )
            .db()?
            .execute(params![keys[0], keys[1], keys[2], keys[3], at, body])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn notifications(
        &self,
        tenant: &TenantId,
        incident_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let tenant = tenant.to_string();
        let incident = incident_id.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT attempts, first_attempt_at, body FROM notifications \
                     WHERE tenant = ?1 AND (?2 IS NULL OR incident_id = ?2) \
                     ORDER BY last_attempt_at DESC LIMIT ?3",
                )
                .db()?;
            let rows = stmt
                .query_map(params![tenant, incident, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .db()?;
            let mut records = Vec::new();
            for row in rows {
                let (attempts, first, body) = row.db()?;
                // One undecodable record (say, written by a newer version) hides only itself.
                match decode::<NotificationRecord>("notification", &body) {
                    Ok(mut record) => {
                        record.attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                        record.first_attempt_at = from_nanos(first);
                        records.push(record);
                    }
                    Err(e) => tracing::warn!(error = %e, "skipped a notification record"),
                }
            }
            Ok(records)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(tenant: &TenantId, id: &str) -> MaintenanceWindow {
        let spec = serde_json::from_value(serde_json::json!({
            "id": id,
            "starts_at": "2026-01-01T00:00:00Z",
            "ends_at": "2026-01-01T01:00:00Z",
        }))
        .expect("window spec");
        MaintenanceWindow {
            tenant: tenant.clone(),
            spec,
            version: 0,
            created_at: DateTime::default(),
            updated_at: DateTime::default(),
        }
    }

    /// The alerter lists a tenant's windows once per job: the statement is compiled once, not
    /// on every run (with `ORDER BY id` SQLite compiled it again each time a tenant was bound),
    /// and the windows still come sorted by id.
    #[tokio::test]
    async fn listing_windows_reuses_its_compiled_statement() {
        let store = SqliteStore::in_memory().await.expect("store");
        let tenants: Vec<TenantId> = ["a", "b", "c"]
            .iter()
            .map(|t| TenantId::parse(*t).expect("tenant"))
            .collect();
        for id in ["zz", "mm", "aa"] {
            store
                .put_window(window(&tenants[0], id), Expect::Absent)
                .await
                .expect("put");
        }
        for round in 0..3 {
            for t in &tenants {
                let listed = store.list_windows(t).await.expect("list");
                let ids: Vec<&str> = listed.iter().map(|w| w.spec.id.as_str()).collect();
                let expected: &[&str] = if *t == tenants[0] {
                    &["aa", "mm", "zz"]
                } else {
                    &[]
                };
                assert_eq!(ids, expected, "round {round}, tenant {t}");
            }
        }
        let reprepared = store
            .call(|conn| {
                Ok(conn
                    .prepare_cached(LIST_WINDOWS)
                    .db()?
                    .get_status(rusqlite::StatementStatus::RePrepare))
            })
            .await
            .expect("status");
        assert_eq!(
            reprepared, 0,
            "the statement was compiled again {reprepared} times"
        );
    }
}
