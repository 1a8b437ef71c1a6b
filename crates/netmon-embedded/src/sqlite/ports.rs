//! The store ports implemented on [`SqliteStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_core::channel::Channel;
use netmon_core::events::Envelope;
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::{CheckState, Status};
use netmon_core::ports::{
    ChannelStore, Claim, Expect, HeartbeatStore, Idempotency, IncidentRecord, Outbox, OutboxEntry,
    Page, PageRequest, PingRecord, StateFlags, StateStore, StatusCounts, StoreError, TargetFlags,
    TargetStore, Versioned as VersionedValue,
};
use netmon_core::target::{CheckSpec, Target};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::atomic::Ordering;

use super::{
    SqliteStore, Versioned, decode, encode, from_nanos, nanos, put_versioned, version_from_db,
};
use crate::error::Db;

/// Targets per trip to the store's thread when all are read (`all_targets`).
const ALL_TARGETS_PAGE: i64 = 1_000;
/// Tenants whose counts are kept (`status_counts`); past it the cache starts over.
const COUNTED_TENANTS: usize = 1_024;
/// Page size when the caller passes 0, and the most one page returns.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// Saturating `now + d` in nanoseconds (leases and retention never overflow into the past).
fn plus(now: DateTime<Utc>, d: chrono::Duration) -> i64 {
    nanos(now).saturating_add(
        d.num_nanoseconds()
            .unwrap_or(if d < chrono::Duration::zero() {
                i64::MIN
            } else {
                i64::MAX
            }),
    )
}

#[async_trait]
impl TargetStore for SqliteStore {
    async fn get_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<Option<Target>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.call(move |conn| {
            let row: Option<(i64, String)> = conn
                .prepare_cached("SELECT version, body FROM targets WHERE tenant = ?1 AND id = ?2")
                .db()?
                .query_row([&tenant, &id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?;
            row.map(|(v, body)| target_from_row(&format!("target {tenant}/{id}"), v, &body))
                .transpose()
        })
        .await
    }

    async fn list_targets(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<Page<Target>, StoreError> {
        let tenant = tenant.to_string();
        let limit = match page.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        // The cursor is the last id returned; ids sort as text, matching the primary key.
        let after = page.after.unwrap_or_default();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, version, body FROM targets WHERE tenant = ?1 AND id > ?2 \
                     ORDER BY id LIMIT ?3",
                )
                .db()?;
            // One extra row tells whether another page exists.
            let rows = stmt
                .query_map(params![tenant, after, i64::from(limit) + 1], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .db()?;
            let mut items = Vec::new();
            let mut more = false;
            for row in rows {
                let (id, v, body) = row.db()?;
                if items.len() == limit as usize {
                    more = true;
                    break;
                }
                items.push(target_from_row(&format!("target {tenant}/{id}"), v, &body)?);
            }
            let next = if more {
                items.last().map(|t: &Target| t.id().to_string())
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn all_targets(&self) -> Result<Vec<Target>, StoreError> {
        // In pages, each its own trip to the store's thread: at 100,000 targets one read held
        // the thread (and every probe result and API read queued behind it) for about a second.
        let mut targets = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let from = after.clone();
            let (page, last) = self
                .call(move |conn| {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT tenant, id, version, body FROM targets \
                             WHERE ?1 IS NULL OR (tenant, id) > (?1, ?2) \
                             ORDER BY tenant, id LIMIT ?3",
                        )
                        .db()?;
                    let (tenant, id) = from.unzip();
                    let rows = stmt
                        .query_map(params![tenant, id, ALL_TARGETS_PAGE], full_row)
                        .db()?;
                    let (mut page, mut last) = (Vec::new(), None);
                    for row in rows {
                        let row = row.db()?;
                        last = Some((row.0.clone(), row.1.clone()));
                        page.extend(readable(target_of(row)));
                    }
                    Ok((page, last))
                })
                .await?;
            targets.extend(page);
            match last {
                Some(last) => after = Some(last),
                None => return Ok(targets),
            }
        }
    }

    async fn targets_token(&self) -> Result<Option<u64>, StoreError> {
        let writes = self.target_writes.load(Ordering::SeqCst);
        let elsewhere = self.call(|conn| data_version(conn)).await?;
        Ok(Some((elsewhere as u64) << 32 ^ writes))
    }

    async fn status_counts(&self, tenant: &TenantId) -> Result<Option<StatusCounts>, StoreError> {
        let tenant = tenant.to_string();
        // Read before the call: a write that lands meanwhile bumps its counter after it commits,
        // so counts read at the old values are never kept past the next call.
        let writes = (
            self.target_writes.load(Ordering::SeqCst),
            self.state_writes.load(Ordering::SeqCst),
        );
        let cache = self.counts.clone();
        // Two scans in id order over the narrow indexes, merged here: a join probed the states
        // once per target (about 100 ms at 100,000), and no row is copied out.
        self.call(move |conn| {
            let key = (data_version(conn)?, writes.0, writes.1);
            if let Some(&(at, counts)) = lock(&cache).get(&tenant)
                && at == key
            {
                return Ok(Some(counts));
            }
            let mut targets = conn
                .prepare_cached("SELECT id, enabled FROM targets WHERE tenant = ?1 ORDER BY id")
                .db()?;
            let mut states = conn
                .prepare_cached(
                    "SELECT id, status, incident_open FROM check_states \
                     WHERE tenant = ?1 ORDER BY id",
                )
                .db()?;
            let (mut targets, mut states) = (
                targets.query([&tenant]).db()?,
                states.query([&tenant]).db()?,
            );
            let mut state = states.next().db()?;
            let mut counts = StatusCounts::default();
            while let Some(target) = targets.next().db()? {
                let id = target.get_ref(0).db()?.as_str().unwrap_or_default();
                // States of deleted targets cannot outlive them, but skip any anyway.
                while let Some(s) = state
                    && s.get_ref(0).db()?.as_str().unwrap_or_default() < id
                {
                    state = states.next().db()?;
                }
                let (status, incident_open) = match state {
                    Some(s) if s.get_ref(0).db()?.as_str().unwrap_or_default() == id => {
                        let status = s.get_ref(1).db()?.as_str().unwrap_or_default();
                        (status_of_column(status), s.get(2).db()?)
                    }
                    _ => (Status::Unknown, false),
                };
                counts.add(target.get(1).db()?, status, incident_open, 1);
            }
            let mut cache = lock(&cache);
            if cache.len() >= COUNTED_TENANTS && !cache.contains_key(&tenant) {
                cache.clear();
            }
            cache.insert(tenant, (key, counts));
            Ok(Some(counts))
        })
        .await
    }

    async fn target_flags(
        &self,
        tenant: &TenantId,
        max: usize,
        with_tags: bool,
    ) -> Result<(Vec<TargetFlags>, bool), StoreError> {
        let tenant = tenant.to_string();
        let limit = i64::try_from(max).unwrap_or(i64::MAX - 1) + 1;
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, enabled, CASE WHEN ?3 THEN tags ELSE '[]' END FROM targets \
                     WHERE tenant = ?1 ORDER BY id LIMIT ?2",
                )
                .db()?;
            let rows = stmt
                .query_map(params![tenant, limit, with_tags], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .db()?;
            let mut flags = Vec::new();
            for row in rows {
                let (id, enabled, tags) = row.db()?;
                let what = format!("target {tenant}/{id}");
                let parsed = TargetId::parse(id)
                    .map_err(|e| StoreError::Corrupt(format!("{what}: bad id: {e}")))
                    .and_then(|id| Ok((id, decode::<Vec<String>>(&what, &tags)?)));
                if let Some((id, tags)) = readable(parsed) {
                    flags.push(TargetFlags { id, enabled, tags });
                }
            }
            let more = flags.len() > max;
            flags.truncate(max);
            Ok((flags, more))
        })
        .await
    }

    async fn public_targets(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<(Vec<Target>, usize), StoreError> {
        let tenant = tenant.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tenant, id, version, body FROM targets \
                     WHERE tenant = ?1 AND public = 1 ORDER BY id LIMIT ?2",
                )
                .db()?;
            let mut shown = Vec::new();
            for row in stmt.query_map(params![tenant, limit], full_row).db()? {
                shown.extend(readable(target_of(row.db()?)));
            }
            let public: i64 = conn
                .prepare_cached("SELECT count(*) FROM targets WHERE tenant = ?1 AND public = 1")
                .db()?
                .query_row([&tenant], |r| r.get(0))
                .db()?;
            let more = usize::try_from(public.saturating_sub(limit).max(0)).unwrap_or(0);
            Ok((shown, more))
        })
        .await
    }

    async fn find_by_heartbeat_token(&self, token: &str) -> Result<Option<Target>, StoreError> {
        let token = token.to_owned();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tenant, id, version, body FROM targets WHERE heartbeat_token = ?1 \
                     ORDER BY tenant, id LIMIT 1",
                )
                .db()?;
            let mut rows = stmt.query_map([&token], full_row).db()?;
            match rows.next() {
                None => Ok(None),
                Some(row) => target_of(row.db()?).map(Some),
            }
        })
        .await
    }

    async fn put_target(&self, mut target: Target, expect: Expect) -> Result<Target, StoreError> {
        let written = self
            .write(move |tx| {
                let (tenant, id) = (target.tenant.to_string(), target.id().to_string());
                put_versioned(tx, Versioned::Targets, &tenant, &id, expect, |v| {
                    target.version = v;
                    encode("target", &target)
                })?;
                let token = match &target.spec.check {
                    CheckSpec::Heartbeat(hb) => hb.token.clone(),
                    _ => None,
                };
                let tags = encode("target tags", &target.spec.tags)?;
                tx.prepare_cached(
                    "UPDATE targets SET heartbeat_token = ?3, public = ?4, enabled = ?5, tags = ?6 \
                 WHERE tenant = ?1 AND id = ?2",
                )
                .db()?
                .execute(params![
                    tenant,
                    id,
                    token,
                    target.spec.public,
                    target.spec.enabled,
                    tags
                ])
                .db()?;
                Ok(target)
            })
            .await;
        // After the write: a reader holding the old token rereads and sees it.
        self.target_writes.fetch_add(1, Ordering::SeqCst);
        written
    }

    async fn delete_target(&self, tenant: &TenantId, id: &TargetId) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let deleted = self
            .write(move |tx| {
                let existed = tx
                    .prepare_cached("DELETE FROM targets WHERE tenant = ?1 AND id = ?2")
                    .db()?
                    .execute([&tenant, &id])
                    .db()?
                    > 0;
                // State and last ping belong to the target: a re-created target starts fresh.
                // Incidents and history stay; they are records of what happened.
                tx.prepare_cached("DELETE FROM check_states WHERE tenant = ?1 AND id = ?2")
                    .db()?
                    .execute([&tenant, &id])
                    .db()?;
                tx.prepare_cached("DELETE FROM heartbeats WHERE tenant = ?1 AND target = ?2")
                    .db()?
                    .execute([&tenant, &id])
                    .db()?;
                Ok(existed)
            })
            .await;
        self.target_writes.fetch_add(1, Ordering::SeqCst);
        deleted
    }
}

/// The `version` column is authoritative; the copy inside the JSON is overwritten.
/// `SELECT tenant, id, version, body FROM targets …`, one row.
fn full_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn target_of(
    (tenant, id, version, body): (String, String, i64, String),
) -> Result<Target, StoreError> {
    target_from_row(&format!("target {tenant}/{id}"), version, &body)
}

fn target_from_row(what: &str, version: i64, body: &str) -> Result<Target, StoreError> {
    let mut t: Target = decode(what, body)?;
    t.version = version_from_db(what, version)?;
    Ok(t)
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn list_channels(&self, tenant: &TenantId) -> Result<Vec<Channel>, StoreError> {
        let tenant = tenant.to_string();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, version, body FROM channels WHERE tenant = ?1 ORDER BY id",
                )
                .db()?;
            let rows = stmt
                .query_map([&tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .db()?;
            rows.map(|row| {
                let (id, v, body) = row.db()?;
                let what = format!("channel {tenant}/{id}");
                let mut c: Channel = decode(&what, &body)?;
                c.version = version_from_db(&what, v)?;
                Ok(c)
            })
            .collect()
        })
        .await
    }

    async fn put_channel(
        &self,
        mut channel: Channel,
        expect: Expect,
    ) -> Result<Channel, StoreError> {
        self.write(move |tx| {
            let (tenant, id) = (channel.tenant.to_string(), channel.spec.id.to_string());
            put_versioned(tx, Versioned::Channels, &tenant, &id, expect, |v| {
                channel.version = v;
                encode("channel", &channel)
            })?;
            Ok(channel)
        })
        .await
    }

    async fn delete_channel(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.write(move |tx| {
            Ok(tx
                .prepare_cached("DELETE FROM channels WHERE tenant = ?1 AND id = ?2")
                .db()?
                .execute([&tenant, &id])
                .db()?
                > 0)
        })
        .await
    }
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn load_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<VersionedValue<CheckState>>, StoreError> {
        let (tenant, target) = (tenant.to_string(), target.to_string());
        self.call(move |conn| load_check_state(conn, &tenant, &target))
            .await
    }

    /// One trip to the store's thread for a whole batch, not one per result.
    async fn load_states(
        &self,
        tenant: &TenantId,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, VersionedValue<CheckState>)>, StoreError> {
        let (tenant, targets) = (tenant.to_string(), targets.to_vec());
        self.call(move |conn| {
            let mut found = Vec::with_capacity(targets.len());
            for target in targets {
                if let Some(state) = load_check_state(conn, &tenant, target.as_str())? {
                    found.push((target, state));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn commit_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        expect: Expect,
        state: &CheckState,
        incidents: &[IncidentRecord],
        outbox: &[Envelope],
    ) -> Result<u64, StoreError> {
        let (tenant, target) = (tenant.to_string(), target.to_string());
        // Encode before queueing: cheap, and keeps CPU work off the connection thread.
        let state_body = encode("check state", state)?;
        let (status, incident_open) = (status_column(state.status), state.incident.is_some());
        let incidents = incidents
            .iter()
            .map(|i| Ok((i.clone(), encode("incident", i)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = outbox
            .iter()
            .map(|e| Ok((e.id.clone(), encode("event", e)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Outbox bookkeeping times (created_at, published_at) are the store's wall clock, not the
        // injected `Clock`: they record when rows were written, for ordering and pruning.
        let created_at = nanos(Utc::now());
        // One transaction: a conflict (or any failure) leaves state, incidents and outbox as
        // they were, so an event exists if and only if its state transition was stored.
        let committed = self
            .write(move |tx| {
                let version =
                    put_versioned(tx, Versioned::CheckStates, &tenant, &target, expect, |_| {
                        Ok(state_body)
                    })?;
                tx.prepare_cached(
                    "UPDATE check_states SET status = ?3, incident_open = ?4 \
                 WHERE tenant = ?1 AND id = ?2",
                )
                .db()?
                .execute(params![tenant, target, status, incident_open])
                .db()?;
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO incidents \
                     (tenant, incident_id, target_id, opened_at, resolved_at, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (tenant, incident_id) DO UPDATE SET \
                     target_id = excluded.target_id, opened_at = excluded.opened_at, \
                     resolved_at = excluded.resolved_at, body = excluded.body",
                    )
                    .db()?;
                for (i, body) in &incidents {
                    upsert
                        .execute(params![
                            i.tenant.as_str(),
                            i.incident_id,
                            i.target_id.as_str(),
                            nanos(i.opened_at),
                            i.resolved_at.map(nanos),
                            body
                        ])
                        .db()?;
                }
                let mut append = tx
                    .prepare_cached(
                        "INSERT INTO outbox (event_id, created_at, body) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (event_id) DO NOTHING",
                    )
                    .db()?;
                for (id, body) in &events {
                    append.execute(params![id, created_at, body]).db()?;
                }
                Ok(version)
            })
            .await;
        // After the write, as for targets: cached counts read before it are not used again.
        self.state_writes.fetch_add(1, Ordering::SeqCst);
        committed
    }

    async fn state_flags(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, StateFlags)>, StoreError> {
        let tenant = tenant.to_string();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, status, incident_open FROM check_states WHERE tenant = ?1",
                )
                .db()?;
            let rows = stmt
                .query_map([&tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })
                .db()?;
            let mut flags = Vec::new();
            for row in rows {
                let (id, status, incident_open) = row.db()?;
                // One unreadable row must not hide the tenant's other states.
                match TargetId::parse(id) {
                    Ok(id) => flags.push((
                        id,
                        StateFlags {
                            status: status_of_column(&status),
                            incident_open,
                        },
                    )),
                    Err(e) => tracing::error!(error = %e, "check state skipped: bad target id"),
                }
            }
            Ok(flags)
        })
        .await
    }

    async fn list_states(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, VersionedValue<CheckState>)>, StoreError> {
        let tenant = tenant.to_string();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, version, body FROM check_states WHERE tenant = ?1 ORDER BY id",
                )
                .db()?;
            let rows = stmt
                .query_map([&tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .db()?;
            rows.map(|row| {
                let (id, v, body) = row.db()?;
                let what = format!("check state {tenant}/{id}");
                let target = TargetId::parse(id)
                    .map_err(|e| StoreError::Corrupt(format!("{what}: bad target id: {e}")))?;
                Ok((
                    target,
                    VersionedValue {
                        value: decode(&what, &body)?,
                        version: version_from_db(&what, v)?,
                    },
                ))
            })
            .collect()
        })
        .await
    }

    /// Open incidents first, then closed ones; each group newest (by `opened_at`) first. An old
    /// incident that is still open is never pushed out by recent closed ones.
    async fn list_incidents(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        let tenant = tenant.to_string();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT incident_id, body FROM incidents WHERE tenant = ?1 \
                     ORDER BY resolved_at IS NULL DESC, opened_at DESC, incident_id DESC \
                     LIMIT ?2",
                )
                .db()?;
            let rows = stmt
                .query_map(params![tenant, i64::from(limit)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .db()?;
            rows.map(|row| {
                let (id, body) = row.db()?;
                decode(&format!("incident {tenant}/{id}"), &body)
            })
            .collect()
        })
        .await
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT event_id, created_at, body FROM outbox WHERE published_at IS NULL \
                     ORDER BY seq LIMIT ?1",
                )
                .db()?;
            let rows = stmt
                .query_map([i64::from(limit)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .db()?;
            rows.map(|row| {
                let (id, created_at, body) = row.db()?;
                Ok(OutboxEntry {
                    envelope: decode(&format!("outbox event {id}"), &body)?,
                    created_at: from_nanos(created_at),
                })
            })
            .collect()
        })
        .await
    }

    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        if event_ids.is_empty() {
            return Ok(());
        }
        let ids = event_ids.to_vec();
        let now = nanos(Utc::now());
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE outbox SET published_at = ?2 \
                     WHERE event_id = ?1 AND published_at IS NULL",
                )
                .db()?;
            for id in &ids {
                stmt.execute(params![id, now]).db()?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Idempotency for SqliteStore {
    async fn claim(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Claim, StoreError> {
        let key = key.to_owned();
        let (now_ns, until) = (nanos(now), plus(now, lease));
        self.write(move |tx| {
            // The one conditional write that decides: insert, or take over an expired record.
            let acquired = tx
                .prepare_cached(
                    "INSERT INTO idempotency (key, status, expires_at) \
                     VALUES (?1, 'in_progress', ?2) \
                     ON CONFLICT (key) DO UPDATE SET \
                     status = 'in_progress', expires_at = excluded.expires_at \
                     WHERE idempotency.expires_at <= ?3",
                )
                .db()?
                .execute(params![key, until, now_ns])
                .db()?
                > 0;
            if acquired {
                return Ok(Claim::Acquired);
            }
            // Lost: read the live record (same transaction) only to say why, like DynamoDB's
            // ReturnValuesOnConditionCheckFailure.
            let status: Option<String> = tx
                .prepare_cached("SELECT status FROM idempotency WHERE key = ?1")
                .db()?
                .query_row([&key], |r| r.get(0))
                .optional()
                .db()?;
            match status.as_deref() {
                Some("done") => Ok(Claim::Done),
                Some("in_progress") | None => Ok(Claim::InProgress),
                Some(other) => Err(StoreError::Corrupt(format!(
                    "idempotency {key}: unknown status {other:?}"
                ))),
            }
        })
        .await
    }

    async fn complete(
        &self,
        key: &str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let until = plus(now, keep);
        // An upsert: completing must stick even if the lease lapsed and the row was taken over.
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO idempotency (key, status, expires_at) VALUES (?1, 'done', ?2) \
                 ON CONFLICT (key) DO UPDATE SET status = 'done', expires_at = excluded.expires_at",
            )
            .db()?
            .execute(params![key, until])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        // Only an in-progress claim is released: a late release must not undo completed work.
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM idempotency WHERE key = ?1 AND status = 'in_progress'")
                .db()?
                .execute([&key])
                .db()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl HeartbeatStore for SqliteStore {
    /// Keeps the newest ping per target: an older ping arriving late does not replace it.
    async fn record_ping(&self, ping: &PingRecord) -> Result<(), StoreError> {
        let body = encode("ping", ping)?;
        let (tenant, target, at) = (ping.tenant.to_string(), ping.target.to_string(), ping.at);
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO heartbeats (tenant, target, at, body) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant, target) DO UPDATE SET at = excluded.at, body = excluded.body \
                 WHERE excluded.at >= heartbeats.at",
            )
            .db()?
            .execute(params![tenant, target, nanos(at), body])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn last_pings(&self) -> Result<Vec<PingRecord>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tenant, target, body FROM heartbeats ORDER BY tenant, target",
                )
                .db()?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .db()?;
            rows.map(|row| {
                let (tenant, target, body) = row.db()?;
                decode(&format!("ping {tenant}/{target}"), &body)
            })
            .collect()
        })
        .await
    }
}

fn load_check_state(
    conn: &Connection,
    tenant: &str,
    target: &str,
) -> Result<Option<VersionedValue<CheckState>>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, body FROM check_states WHERE tenant = ?1 AND id = ?2")
        .db()?
        .query_row([tenant, target], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    row.map(|(v, body)| {
        let what = format!("check state {tenant}/{target}");
        Ok(VersionedValue {
            value: decode(&what, &body)?,
            version: version_from_db(&what, v)?,
        })
    })
    .transpose()
}

/// Commits by other connections to the file (the CLI's `--store`): moves whenever one commits.
fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("PRAGMA data_version")
        .db()?
        .query_row([], |r| r.get(0))
        .db()
}

/// A stored target, or `None` after logging why it cannot be read: one unreadable row (say,
/// written by a newer version) must not hide the tenant's other targets.
fn readable<T>(decoded: Result<T, StoreError>) -> Option<T> {
    decoded
        .inspect_err(
            |e| tracing::error!(error = %e, "target skipped: its stored row cannot be read"),
        )
        .ok()
}

/// The counts cache's lock; a panic while it was held left nothing half-written in it.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `check_states.status`: the state's status as its JSON spells it.
fn status_column(status: Status) -> &'static str {
    match status {
        Status::Unknown => "unknown",
        Status::Up => "up",
        Status::Down => "down",
    }
}

/// A status column written by a newer version reads as unknown rather than failing the tenant.
fn status_of_column(text: &str) -> Status {
    match text {
        "up" => Status::Up,
        "down" => Status::Down,
        _ => Status::Unknown,
    }
}
