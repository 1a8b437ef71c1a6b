//! The store ports on [`MemoryStore`]. Each method is one [`MemoryStore::run`] call: checks
//! first, then changes.

use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_core::apikey::ApiKey;
use netmon_core::channel::Channel;
use netmon_core::events::Envelope;
use netmon_core::history::{Granularity, HistoryBucket, aggregate};
use netmon_core::ids::{TargetId, TenantId, WindowId};
use netmon_core::incident::CheckState;
use netmon_core::maintenance::MaintenanceWindow;
use netmon_core::notification::NotificationRecord;
use netmon_core::ports::{
    ApiKeyStore, ChannelStore, Claim, Expect, HeartbeatStore, HistoryStore, Idempotency,
    IncidentRecord, MaintenanceStore, NotificationLog, Outbox, OutboxEntry, Page, PageRequest,
    PingRecord, ReplyStore, StateStore, StoreError, TargetStore, Versioned,
};
use netmon_core::result::ProbeResult;
use netmon_core::rpc::{RpcReply, is_valid_correlation_id};
use netmon_core::target::{CheckSpec, Target};

use super::{IdemRecord, IdemStatus, MemoryStore, Op, OutboxRecord, in_tenant, key, plus};

/// Page size when the caller passes 0, and the most one page returns (as both adapters).
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

fn token_of(t: &Target) -> Option<&str> {
    match &t.spec.check {
        CheckSpec::Heartbeat(hb) => hb.token.as_deref(),
        _ => None,
    }
}

#[async_trait]
impl TargetStore for MemoryStore {
    async fn get_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<Option<Target>, StoreError> {
        self.run(Op::GetTarget, |d| {
            Ok(d.targets.get(&key(tenant, id.as_str())).cloned())
        })
        .await
    }

    async fn list_targets(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<Page<Target>, StoreError> {
        let limit = match page.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        } as usize;
        // The cursor is the last id returned; everything after it in id order.
        let after = key(tenant, page.after.as_deref().unwrap_or(""));
        self.run(Op::ListTargets, |d| {
            let mut found = d
                .targets
                .range((Bound::Excluded(after), Bound::Unbounded))
                .take_while(|((t, _), _)| t == tenant.as_str())
                .map(|(_, target)| target);
            let items: Vec<Target> = found.by_ref().take(limit).cloned().collect();
            let next = match found.next() {
                Some(_) => items.last().map(|t| t.id().to_string()),
                None => None,
            };
            Ok(Page { items, next })
        })
        .await
    }

    /// Ordered by tenant, then id.
    async fn all_targets(&self) -> Result<Vec<Target>, StoreError> {
        self.run(Op::AllTargets, |d| {
            Ok(d.targets.values().cloned().collect())
        })
        .await
    }

    /// As DynamoDB: a heartbeat token names one target, so taking another target's token is a
    /// `Conflict`.
    async fn put_target(&self, mut target: Target, expect: Expect) -> Result<Target, StoreError> {
        let k = key(&target.tenant, target.id().as_str());
        self.run(Op::PutTarget, |d| {
            let what = format!("target {}/{}", target.tenant, target.id());
            let current = d.targets.get(&k);
            let version = expect.next_version(&what, current.map(|c| c.version))?;
            let new_token = token_of(&target).map(str::to_owned);
            if let Some(tok) = &new_token
                && d.tokens.get(tok).is_some_and(|holder| *holder != k)
            {
                return Err(StoreError::Conflict(format!(
                    "{what}: its heartbeat token is already used by another target"
                )));
            }
            let old_token = current.and_then(token_of).map(str::to_owned);
            if let Some(old) = old_token
                && Some(&old) != new_token.as_ref()
            {
                d.tokens.remove(&old);
            }
            if let Some(tok) = new_token {
                d.tokens.insert(tok, k.clone());
            }
            target.version = version;
            d.targets.insert(k, target.clone());
            Ok(target)
        })
        .await
    }

    /// Also removes the target's check state and last ping (a re-created target starts
    /// fresh); incidents and history stay.
    async fn delete_target(&self, tenant: &TenantId, id: &TargetId) -> Result<bool, StoreError> {
        let k = key(tenant, id.as_str());
        self.run(Op::DeleteTarget, |d| {
            let removed = d.targets.remove(&k);
            if let Some(tok) = removed.as_ref().and_then(token_of)
                && d.tokens.get(tok) == Some(&k)
            {
                d.tokens.remove(tok);
            }
            d.states.remove(&k);
            d.pings.remove(&k);
            Ok(removed.is_some())
        })
        .await
    }

    /// One lookup in the token index, as DynamoDB's adapter (not the default scan).
    async fn find_by_heartbeat_token(&self, token: &str) -> Result<Option<Target>, StoreError> {
        self.run(Op::FindByHeartbeatToken, |d| {
            Ok(d.tokens
                .get(token)
                .and_then(|k| d.targets.get(k))
                .filter(|t| token_of(t) == Some(token))
                .cloned())
        })
        .await
    }
}

#[async_trait]
impl ChannelStore for MemoryStore {
    /// Ordered by id.
    async fn list_channels(&self, tenant: &TenantId) -> Result<Vec<Channel>, StoreError> {
        self.run(Op::ListChannels, |d| {
            Ok(in_tenant(&d.channels, tenant).cloned().collect())
        })
        .await
    }

    async fn put_channel(
        &self,
        mut channel: Channel,
        expect: Expect,
    ) -> Result<Channel, StoreError> {
        let k = key(&channel.tenant, channel.spec.id.as_str());
        self.run(Op::PutChannel, |d| {
            let what = format!("channel {}/{}", channel.tenant, channel.spec.id);
            channel.version = expect.next_version(&what, d.channels.get(&k).map(|c| c.version))?;
            d.channels.insert(k, channel.clone());
            Ok(channel)
        })
        .await
    }

    async fn delete_channel(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.run(Op::DeleteChannel, |d| {
            Ok(d.channels.remove(&key(tenant, id)).is_some())
        })
        .await
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn load_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<Versioned<CheckState>>, StoreError> {
        self.run(Op::LoadState, |d| {
            Ok(d.states
                .get(&key(tenant, target.as_str()))
                .map(|(_, v)| v.clone()))
        })
        .await
    }

    /// One critical section: a version conflict leaves state, incidents and outbox untouched.
    /// Incidents are upserted by `(their tenant, incident_id)`, later records in one commit
    /// winning; events whose id the outbox has ever held (published or not) are skipped, and
    /// of one id in one commit the first is kept.
    async fn commit_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        expect: Expect,
        state: &CheckState,
        incidents: &[IncidentRecord],
        outbox: &[Envelope],
    ) -> Result<u64, StoreError> {
        let k = key(tenant, target.as_str());
        let created_at = self.now();
        self.run(Op::CommitState, |d| {
            let what = format!("check state {tenant}/{target}");
            let version = expect.next_version(&what, d.states.get(&k).map(|(_, v)| v.version))?;
            d.states.insert(
                k,
                (
                    target.clone(),
                    Versioned {
                        value: state.clone(),
                        version,
                    },
                ),
            );
            for i in incidents {
                d.incidents
                    .insert(key(&i.tenant, &i.incident_id), i.clone());
            }
            for e in outbox {
                if d.outbox.contains_key(&e.id) {
                    continue;
                }
                let seq = d.next_seq;
                d.next_seq += 1;
                d.pending.insert(seq, e.id.clone());
                d.outbox.insert(
                    e.id.clone(),
                    OutboxRecord {
                        seq,
                        envelope: e.clone(),
                        created_at,
                    },
                );
            }
            Ok(version)
        })
        .await
    }

    /// Ordered by target id.
    async fn list_states(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        self.run(Op::ListStates, |d| {
            Ok(in_tenant(&d.states, tenant).cloned().collect())
        })
        .await
    }

    /// Open incidents first, then closed ones; each group newest (by `opened_at`, then id)
    /// first.
    async fn list_incidents(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.run(Op::ListIncidents, |d| {
            let mut all: Vec<&IncidentRecord> = in_tenant(&d.incidents, tenant).collect();
            all.sort_by(|a, b| {
                (b.resolved_at.is_none(), b.opened_at, &b.incident_id).cmp(&(
                    a.resolved_at.is_none(),
                    a.opened_at,
                    &a.incident_id,
                ))
            });
            Ok(all.into_iter().take(limit as usize).cloned().collect())
        })
        .await
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    /// Oldest commit first, each commit's events in order; at most 1,000 (as DynamoDB).
    async fn pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = limit.min(MAX_PAGE) as usize;
        self.run(Op::Pending, |d| {
            d.pending
                .values()
                .take(limit)
                .map(|id| {
                    let rec = d.outbox.get(id).ok_or_else(|| {
                        StoreError::Corrupt(format!("outbox: pending event {id} has no entry"))
                    })?;
                    Ok(OutboxEntry {
                        envelope: rec.envelope.clone(),
                        created_at: rec.created_at,
                    })
                })
                .collect()
        })
        .await
    }

    /// Unknown and already-published ids are ignored.
    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        self.run(Op::MarkPublished, |d| {
            for id in event_ids {
                if let Some(rec) = d.outbox.get(id) {
                    d.pending.remove(&rec.seq);
                }
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Idempotency for MemoryStore {
    /// The conditional put of both adapters: wins if there is no record or it lapsed
    /// (`expires_at <= now`); otherwise says what holds it.
    async fn claim(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Claim, StoreError> {
        self.run(Op::Claim, |d| {
            if let Some(rec) = d.idempotency.get(key)
                && rec.expires_at > now
            {
                return Ok(match rec.status {
                    IdemStatus::Done => Claim::Done,
                    IdemStatus::InProgress => Claim::InProgress,
                });
            }
            d.idempotency.insert(
                key.to_owned(),
                IdemRecord {
                    status: IdemStatus::InProgress,
                    expires_at: plus(now, lease),
                },
            );
            Ok(Claim::Acquired)
        })
        .await
    }

    /// An upsert: completing sticks even if the lease lapsed and was taken over.
    async fn complete(
        &self,
        key: &str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        self.run(Op::Complete, |d| {
            d.idempotency.insert(
                key.to_owned(),
                IdemRecord {
                    status: IdemStatus::Done,
                    expires_at: plus(now, keep),
                },
            );
            Ok(())
        })
        .await
    }

    /// Removes the record only while it is in progress: a late release must not undo
    /// completed work.
    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.run(Op::Release, |d| {
            if d.idempotency
                .get(key)
                .is_some_and(|r| r.status == IdemStatus::InProgress)
            {
                d.idempotency.remove(key);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    /// A result already recorded (same tenant, target, start and location) is skipped, so a
    /// redelivered batch does not duplicate history.
    async fn record(&self, results: &[ProbeResult]) -> Result<(), StoreError> {
        self.run(Op::Record, |d| {
            for r in results {
                d.results
                    .entry(key(&r.tenant, r.target.as_str()))
                    .or_default()
                    .entry((r.started_at, r.location.clone()))
                    .or_insert_with(|| r.clone());
            }
            Ok(())
        })
        .await
    }

    /// Exact aggregation of the results started in `[from, to)`, as the SQLite store does
    /// (and DynamoDB's while its raw blocks last). A non-finite duration counts as 0 ms, as in
    /// both adapters.
    async fn buckets(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<HistoryBucket>, StoreError> {
        if from >= to {
            // Still a call the caller made.
            return self.run(Op::Buckets, |_| Ok(Vec::new())).await;
        }
        self.run(Op::Buckets, |d| {
            let Some(rows) = d.results.get(&key(tenant, target.as_str())) else {
                return Ok(Vec::new());
            };
            let samples = rows
                .range((from, String::new())..)
                .take_while(|((at, _), _)| *at < to)
                .map(|(_, r)| {
                    let ms = if r.duration_ms.is_finite() {
                        r.duration_ms
                    } else {
                        0.0
                    };
                    (r.started_at, r.outcome, ms)
                });
            Ok(aggregate(samples, granularity))
        })
        .await
    }

    /// Oldest first (ties by location), at most `limit`.
    async fn results_since(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        self.run(Op::ResultsSince, |d| {
            Ok(d.results
                .get(&key(tenant, target.as_str()))
                .map(|rows| {
                    rows.range((since, String::new())..)
                        .take(limit as usize)
                        .map(|(_, r)| r.clone())
                        .collect()
                })
                .unwrap_or_default())
        })
        .await
    }
}

#[async_trait]
impl HeartbeatStore for MemoryStore {
    /// Keeps the newest ping per target: an older ping arriving late does not replace it (one
    /// at the same instant does, as in both adapters).
    async fn record_ping(&self, ping: &PingRecord) -> Result<(), StoreError> {
        self.run(Op::RecordPing, |d| {
            let k = key(&ping.tenant, ping.target.as_str());
            if d.pings.get(&k).is_none_or(|old| ping.at >= old.at) {
                d.pings.insert(k, ping.clone());
            }
            Ok(())
        })
        .await
    }

    /// Ordered by tenant, then target.
    async fn last_pings(&self) -> Result<Vec<PingRecord>, StoreError> {
        self.run(Op::LastPings, |d| Ok(d.pings.values().cloned().collect()))
            .await
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        self.run(Op::CreateKey, |d| {
            if d.keys.contains_key(&k.id) {
                return Err(StoreError::Conflict(format!(
                    "api key {} already exists",
                    k.id
                )));
            }
            d.keys.insert(k.id.clone(), k.clone());
            Ok(())
        })
        .await
    }

    async fn get_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.run(Op::GetKey, |d| Ok(d.keys.get(id).cloned())).await
    }

    async fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        self.run(Op::ListKeys, |d| {
            let mut keys: Vec<ApiKey> = d
                .keys
                .values()
                .filter(|k| tenant.is_none_or(|t| &k.tenant == t))
                .cloned()
                .collect();
            keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(keys)
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
        self.run(Op::RevokeKey, |d| {
            Ok(d.keys.get_mut(id).map(|k| {
                k.revoked_at.get_or_insert(at);
                k.clone()
            }))
        })
        .await
    }
}

#[async_trait]
impl MaintenanceStore for MemoryStore {
    async fn get_window(
        &self,
        tenant: &TenantId,
        id: &WindowId,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        self.run(Op::GetWindow, |d| {
            Ok(d.windows.get(&key(tenant, id.as_str())).cloned())
        })
        .await
    }

    /// Ordered by id.
    async fn list_windows(&self, tenant: &TenantId) -> Result<Vec<MaintenanceWindow>, StoreError> {
        self.run(Op::ListWindows, |d| {
            Ok(in_tenant(&d.windows, tenant).cloned().collect())
        })
        .await
    }

    async fn put_window(
        &self,
        mut window: MaintenanceWindow,
        expect: Expect,
    ) -> Result<MaintenanceWindow, StoreError> {
        let k = key(&window.tenant, window.spec.id.as_str());
        self.run(Op::PutWindow, |d| {
            let what = format!("window {}/{}", window.tenant, window.spec.id);
            window.version = expect.next_version(&what, d.windows.get(&k).map(|w| w.version))?;
            d.windows.insert(k, window.clone());
            Ok(window)
        })
        .await
    }

    async fn delete_window(&self, tenant: &TenantId, id: &WindowId) -> Result<bool, StoreError> {
        self.run(Op::DeleteWindow, |d| {
            Ok(d.windows.remove(&key(tenant, id.as_str())).is_some())
        })
        .await
    }
}

#[async_trait]
impl ReplyStore for MemoryStore {
    /// The first reply for a correlation id wins. As DynamoDB, an id that is not a valid key
    /// is refused as `Corrupt`.
    async fn put_reply(
        &self,
        reply: &RpcReply,
        _expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run(Op::PutReply, |d| {
            if !is_valid_correlation_id(&reply.correlation_id) {
                return Err(StoreError::Corrupt(
                    "rpc reply: correlation id is not a valid key".into(),
                ));
            }
            if d.replies.contains_key(&reply.correlation_id) {
                return Ok(false);
            }
            d.replies
                .insert(reply.correlation_id.clone(), reply.clone());
            Ok(true)
        })
        .await
    }

    async fn get_reply(&self, correlation_id: &str) -> Result<Option<RpcReply>, StoreError> {
        self.run(Op::GetReply, |d| Ok(d.replies.get(correlation_id).cloned()))
            .await
    }
}

#[async_trait]
impl NotificationLog for MemoryStore {
    async fn record_attempt(
        &self,
        tenant: &TenantId,
        attempt: &NotificationRecord,
    ) -> Result<(), StoreError> {
        self.run(Op::RecordAttempt, |d| {
            let (incident, event, channel) = attempt.key();
            let id = format!("{incident}#{event}#{channel}");
            let mut record = attempt.clone();
            if let Some(before) = d.notifications.get(&key(tenant, &id)) {
                record.attempts = before.attempts.saturating_add(1);
                record.first_attempt_at = before.first_attempt_at;
            } else {
                record.attempts = 1;
            }
            d.notifications.insert(key(tenant, &id), record);
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
        self.run(Op::Notifications, |d| {
            let mut records: Vec<_> = in_tenant(&d.notifications, tenant)
                .filter(|r| incident_id.is_none_or(|i| r.incident_id == i))
                .cloned()
                .collect();
            records.sort_by_key(|r| std::cmp::Reverse(r.last_attempt_at));
            records.truncate(limit);
            Ok(records)
        })
        .await
    }
}
