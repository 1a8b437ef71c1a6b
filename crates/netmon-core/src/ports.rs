//! Ports: the narrow interfaces domain services use. Adapters live elsewhere (embedded SQLite and
//! in-memory bus; DynamoDB, SNS and SQS). Every adapter of a port passes the same behavioural
//! suite in `netmon-testkit`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::events::Envelope;
use crate::group::Group;
use crate::ids::{TargetId, TenantId};
use crate::incident::CheckState;
use crate::notification::NotificationRecord;
use crate::result::ProbeResult;
use crate::target::Target;

/// Store failures, split by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: someone else wrote first. Reload and retry.
    #[error("version conflict: {0}")]
    Conflict(String),
    /// The backend is unreachable or throttling. Retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded or violates an invariant. Retrying will not help.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Unavailable(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("event too large for the bus: {0}")]
    TooLarge(String),
    /// A subscriber failed to process the event (in-process bus only).
    #[error("event handler failed: {0}")]
    Handler(String),
    #[error("event bus is shut down")]
    Closed,
}

/// Publishes events to every interested handler. Returning `Ok` means the events are durable
/// for their consumers (accepted by SNS, or processed by every in-process subscriber).
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError>;
}

/// Time, injectable so tests drive it without sleeping.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= deadline`.
    async fn sleep_until(&self, deadline: DateTime<Utc>);
}

/// A value with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// What a write expects to find, for optimistic concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create: fails with `Conflict` if it exists.
    Absent,
    /// Update: fails with `Conflict` unless the stored version matches.
    Version(u64),
    /// Upsert, last writer wins.
    Any,
}

impl Expect {
    /// The version a write of `what` stores when the stored version is `current`, or why the
    /// write must be refused. Every store adapter applies this one rule.
    pub fn next_version(self, what: &str, current: Option<u64>) -> Result<u64, StoreError> {
        match (self, current) {
            (Expect::Absent | Expect::Any, None) => Ok(1),
            (Expect::Absent, Some(v)) => Err(StoreError::Conflict(format!(
                "{what} already exists (version {v})"
            ))),
            (Expect::Version(want), Some(v)) if want == v => v
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: version overflow"))),
            (Expect::Version(want), found) => Err(StoreError::Conflict(format!(
                "{what}: expected version {want}, found {}",
                found.map_or_else(|| "none".to_owned(), |v| v.to_string())
            ))),
            (Expect::Any, Some(v)) => v
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: version overflow"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    pub limit: u32,
    /// Opaque cursor from a previous page.
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Hands the tenant's targets to `visit` a page at a time, in id order, until it returns false
/// or they end; true if it stopped with targets left unread.
async fn scan_targets<S: TargetStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    mut visit: impl FnMut(Vec<Target>) -> bool + Send,
) -> Result<bool, StoreError> {
    let mut after = None;
    loop {
        let page = store
            .list_targets(
                tenant,
                PageRequest {
                    limit: SCAN_PAGE,
                    after,
                },
            )
            .await?;
        let go_on = visit(page.items);
        after = page.next;
        if after.is_none() {
            return Ok(false);
        }
        if !go_on {
            return Ok(true);
        }
    }
}

/// A tenant's targets by status: `up`, `down` and `unknown` count enabled targets, `disabled`
/// the rest; `open_incidents` counts targets with an open incident, enabled or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub total: usize,
    pub up: usize,
    pub down: usize,
    pub unknown: usize,
    pub disabled: usize,
    pub open_incidents: usize,
}

impl StatusCounts {
    /// Counts `n` targets of one kind.
    pub fn add(
        &mut self,
        enabled: bool,
        status: crate::incident::Status,
        incident_open: bool,
        n: usize,
    ) {
        use crate::incident::Status;
        self.total += n;
        match (enabled, status) {
            (false, _) => self.disabled += n,
            (true, Status::Up) => self.up += n,
            (true, Status::Down) => self.down += n,
            (true, Status::Unknown) => self.unknown += n,
        }
        if incident_open {
            self.open_incidents += n;
        }
    }
}

/// What the overview needs of a target to count it ([`TargetStore::target_flags`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFlags {
    pub id: TargetId,
    pub enabled: bool,
    /// Empty unless asked for.
    pub tags: Vec<String>,
}

/// What the overview needs of a target's state to count it ([`StateStore::state_flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFlags {
    pub status: crate::incident::Status,
    pub incident_open: bool,
}

/// How far [`TargetStore::public_targets`]'s default scan reads, in pages of
/// [`SCAN_PAGE`]: public targets past a tenant's first 10,000 are neither shown nor counted
/// by a store without an index.
pub const PUBLIC_SCAN_TARGETS: usize = 10_000;
const SCAN_PAGE: u32 = 500;

#[async_trait]
pub trait TargetStore: Send + Sync {
    async fn get_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<Option<Target>, StoreError>;
    /// Targets of one tenant ordered by id.
    async fn list_targets(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<Page<Target>, StoreError>;
    /// Every target of every tenant (the embedded scheduler; small deployments).
    async fn all_targets(&self) -> Result<Vec<Target>, StoreError>;
    /// Every target of every tenant, each handed to `visit` as it is read, in no particular
    /// order, so a caller need not hold them all decoded (the cloud tick at 100,000 targets).
    /// Entries that cannot be decoded are skipped as by `all_targets`. The default reads
    /// `all_targets`; adapters that read in pages override it.
    async fn visit_targets(
        &self,
        visit: &mut (dyn FnMut(Target) + Send),
    ) -> Result<(), StoreError> {
        for target in self.all_targets().await? {
            visit(target);
        }
        Ok(())
    }
    /// A token that changes whenever the stored targets may have changed, by this process or
    /// another, so a reader can skip a periodic reread that would find nothing new. `None`
    /// (the default) when the store cannot tell: readers then reread on their schedule.
    async fn targets_token(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// Writes the target with `version` = previous + 1 (1 when created) and returns it stored.
    async fn put_target(&self, target: Target, expect: Expect) -> Result<Target, StoreError>;
    /// Returns whether it existed. Also removes its check state.
    async fn delete_target(&self, tenant: &TenantId, id: &TargetId) -> Result<bool, StoreError>;

    /// The tenant's targets counted by status as the overview shows them, when the store can
    /// count them itself (`None`, the default: the caller counts from [`Self::target_flags`] and
    /// [`StateStore::state_flags`]). Maintenance is not counted here.
    async fn status_counts(&self, _tenant: &TenantId) -> Result<Option<StatusCounts>, StoreError> {
        Ok(None)
    }

    /// Up to `limit` of the tenant's public targets in id order, and how many more are public
    /// (the status page). The default scans the tenant's first [`PUBLIC_SCAN_TARGETS`] targets
    /// in pages; adapters that index `public` override it and see every target.
    async fn public_targets(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<(Vec<Target>, usize), StoreError> {
        let (mut shown, mut more) = (Vec::new(), 0);
        let mut scanned = 0;
        scan_targets(self, tenant, |page| {
            scanned += page.len();
            for t in page.into_iter().filter(|t| t.spec.public) {
                if shown.len() < limit {
                    shown.push(t);
                } else {
                    more += 1;
                }
            }
            scanned < PUBLIC_SCAN_TARGETS
        })
        .await?;
        Ok((shown, more))
    }

    /// The first `max` of the tenant's targets in id order as the overview counts them (id,
    /// enabled, and the tags when `with_tags`), and whether it has more. The default decodes
    /// every target in pages; adapters that keep these as columns override it and its bound.
    async fn target_flags(
        &self,
        tenant: &TenantId,
        max: usize,
        with_tags: bool,
    ) -> Result<(Vec<TargetFlags>, bool), StoreError> {
        let mut flags = Vec::new();
        let stopped = scan_targets(self, tenant, |page| {
            flags.extend(page.into_iter().map(|t| TargetFlags {
                enabled: t.spec.enabled,
                tags: if with_tags { t.spec.tags } else { Vec::new() },
                id: t.spec.id,
            }));
            flags.len() < max
        })
        .await?;
        let more = stopped || flags.len() > max;
        flags.truncate(max);
        Ok((flags, more))
    }

    /// The heartbeat target whose ping token is `token`, in any tenant. The default scans every
    /// target (fine for one process); cloud adapters keep an index.
    async fn find_by_heartbeat_token(&self, token: &str) -> Result<Option<Target>, StoreError> {
        Ok(self.all_targets().await?.into_iter().find(|t| {
            matches!(&t.spec.check, crate::target::CheckSpec::Heartbeat(hb) if hb.token.as_deref() == Some(token))
        }))
    }
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    async fn list_channels(&self, tenant: &TenantId) -> Result<Vec<Channel>, StoreError>;
    async fn put_channel(&self, channel: Channel, expect: Expect) -> Result<Channel, StoreError>;
    async fn delete_channel(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;
}

/// A recorded incident, open or closed: what the API lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub tenant: TenantId,
    pub incident_id: String,
    pub target_id: TargetId,
    pub target_name: String,
    pub opened_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub cause: crate::events::IncidentCause,
}

/// Check state, incidents and the outbox, written together so an incident event exists if and
/// only if the state transition that caused it was stored.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn load_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<Versioned<CheckState>>, StoreError>;

    /// The stored states of `targets` (strongly consistent, as [`load_state`](Self::load_state)),
    /// those without one left out: one round trip for a batch where the store can.
    async fn load_states(
        &self,
        tenant: &TenantId,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        let mut found = Vec::new();
        for target in targets {
            if let Some(v) = self.load_state(tenant, target).await? {
                found.push((target.clone(), v));
            }
        }
        Ok(found)
    }

    /// The stored states of `targets`, as [`load_states`](Self::load_states), for a batch whose
    /// targets are all in `group`: a store that keeps states ordered by group reads the group as
    /// one range and drops the states of targets not asked for. The default reads by target.
    async fn load_group_states(
        &self,
        tenant: &TenantId,
        group: Group,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        let _ = group;
        self.load_states(tenant, targets).await
    }

    /// Atomically: write `state` if the stored version matches `expect`, upsert `incidents`, and
    /// append `outbox` events (ignoring ids already present). Returns the new version.
    async fn commit_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        expect: Expect,
        state: &CheckState,
        incidents: &[IncidentRecord],
        outbox: &[Envelope],
    ) -> Result<u64, StoreError>;

    async fn list_states(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError>;

    /// Every stored state of the tenant as the overview counts it. The default decodes
    /// `list_states`; adapters that keep these as columns override it.
    async fn state_flags(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, StateFlags)>, StoreError> {
        Ok(self
            .list_states(tenant)
            .await?
            .into_iter()
            .map(|(id, v)| {
                let flags = StateFlags {
                    status: v.value.status,
                    incident_open: v.value.incident.is_some(),
                };
                (id, flags)
            })
            .collect())
    }

    /// Open incidents and the most recent closed ones, newest first.
    async fn list_incidents(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub envelope: Envelope,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait Outbox: Send + Sync {
    /// Unpublished events, oldest first.
    async fn pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;
    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError>;
}

/// Outcome of trying to start an idempotent piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Go ahead; call `complete` on success or `release` on failure.
    Acquired,
    /// Done before: skip it.
    Done,
    /// Someone else holds it and its lease has not expired: retry later.
    InProgress,
}

/// What became of each notification ([`crate::notification`]). Writes are upserts that never
/// read first: a redelivered attempt counts as one more attempt, which is what it was.
#[async_trait]
pub trait NotificationLog: Send + Sync {
    /// Records an attempt: `attempt` carries its outcome, reason, next attempt and time (as
    /// `last_attempt_at`); the stored record counts one more attempt and keeps the time of the
    /// first. A record may be dropped [`NOTIFICATION_KEEP`] after its last attempt.
    async fn record_attempt(
        &self,
        tenant: &TenantId,
        attempt: &NotificationRecord,
    ) -> Result<(), StoreError>;
    /// The tenant's records, the latest attempt first, at most `limit`; only one incident's
    /// when `incident_id` is given. A record that cannot be decoded is skipped and logged.
    async fn notifications(
        &self,
        tenant: &TenantId,
        incident_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError>;
}

/// How long notification records outlive their last attempt.
pub const NOTIFICATION_KEEP: chrono::Duration = chrono::Duration::days(30);

/// Powertools-style idempotency: one conditional write claims a key.
#[async_trait]
pub trait Idempotency: Send + Sync {
    async fn claim(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Claim, StoreError>;
    /// Marks the work done; the record is kept until `now + keep`.
    async fn complete(
        &self,
        key: &str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> Result<(), StoreError>;
    async fn release(&self, key: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait HistoryStore: Send + Sync {
    async fn record(&self, results: &[ProbeResult]) -> Result<(), StoreError>;
    /// [`Self::record`] of one probe batch whose targets are one [`crate::group::Group`] of
    /// `group_level` (the batch's, when it has one). Stores that key history by target ignore
    /// it; the cloud store keys raw results by group at that level.
    async fn record_batch(
        &self,
        results: &[ProbeResult],
        group_level: Option<u8>,
    ) -> Result<(), StoreError> {
        let _ = group_level;
        self.record(results).await
    }
    /// Uptime and latency of one target per hour or day in `[from, to)`, ascending, empty
    /// buckets left out.
    async fn buckets(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: crate::history::Granularity,
    ) -> Result<Vec<crate::history::HistoryBucket>, StoreError>;

    /// Results of one target at or after `since`, oldest first, at most `limit`. Raw results
    /// are kept for a bounded window (embedded: `history.raw_retention`, 48 h by default; cloud:
    /// 3 days), so older ones are simply absent; long-term history is in `buckets`.
    async fn results_since(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ProbeResult>, StoreError>;
}

/// Where the scheduler puts probe jobs (SQS in the cloud, a bounded channel in one process).
#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn enqueue(&self, jobs: Vec<crate::jobs::ProbeJob>) -> Result<(), BusError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PingKind {
    /// The job finished fine.
    Success,
    /// The job started (`/ping/{token}/start`); does not count as a success.
    Start,
    /// The job reported failure (`/ping/{token}/fail`).
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingRecord {
    pub tenant: TenantId,
    pub target: TargetId,
    pub at: DateTime<Utc>,
    pub kind: PingKind,
}

/// Last heartbeat ping per target, so overdue jobs are detected after a restart too.
#[async_trait]
pub trait HeartbeatStore: Send + Sync {
    async fn record_ping(&self, ping: &PingRecord) -> Result<(), StoreError>;
    /// The latest ping of every heartbeat target that has pinged.
    async fn last_pings(&self) -> Result<Vec<PingRecord>, StoreError>;
}

/// API keys, looked up by their (non-secret) id on every authenticated request.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Fails with `Conflict` if a key with this id exists (revoked or not).
    async fn create_key(&self, key: &crate::apikey::ApiKey) -> Result<(), StoreError>;
    async fn get_key(&self, id: &str) -> Result<Option<crate::apikey::ApiKey>, StoreError>;
    /// Keys of one tenant, or of every tenant with `None`, revoked ones included, oldest first
    /// (ties by id).
    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<crate::apikey::ApiKey>, StoreError>;
    /// Marks the key revoked at `at` (a second revoke keeps the first time). Returns the key as
    /// stored afterwards, `None` if there is no such key.
    async fn revoke_key(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<crate::apikey::ApiKey>, StoreError>;
}

/// Maintenance windows per tenant, versioned like targets.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    async fn get_window(
        &self,
        tenant: &TenantId,
        id: &crate::ids::WindowId,
    ) -> Result<Option<crate::maintenance::MaintenanceWindow>, StoreError>;
    /// Every window of the tenant, past ones included, ordered by id.
    async fn list_windows(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<crate::maintenance::MaintenanceWindow>, StoreError>;
    /// Writes with `version` = previous + 1 (1 when created) and returns it stored.
    async fn put_window(
        &self,
        window: crate::maintenance::MaintenanceWindow,
        expect: Expect,
    ) -> Result<crate::maintenance::MaintenanceWindow, StoreError>;
    async fn delete_window(
        &self,
        tenant: &TenantId,
        id: &crate::ids::WindowId,
    ) -> Result<bool, StoreError>;
}

/// EventRPC reply records for callers that poll (the cloud API waiting for "check now").
#[async_trait]
pub trait ReplyStore: Send + Sync {
    /// Stores the reply unless one exists for its correlation id: the first reply wins, so a
    /// redelivered event cannot change an answer already read. Returns whether it was stored.
    /// The record may be dropped after `expires_at`.
    async fn put_reply(
        &self,
        reply: &crate::rpc::RpcReply,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn get_reply(
        &self,
        correlation_id: &str,
    ) -> Result<Option<crate::rpc::RpcReply>, StoreError>;
}

/// The network side of a probe: runs one check and reports what it saw (the probe engine,
/// behind the SSRF guard). Judging what it saw is the domain's (`result::judge`).
#[async_trait]
pub trait ProbeEngine: Send + Sync {
    /// Never panics, and returns within `timeout` plus scheduling slack.
    async fn observe(
        &self,
        check: &crate::target::CheckSpec,
        timeout: std::time::Duration,
    ) -> crate::observation::Observation;
}

/// Why a notification did not go through, as the retry machinery needs it. Reasons are for
/// people and logs: they never carry a secret (credentials, tokens, a webhook's path or query).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later: the receiver is down or slow, throttling (429) or timed out
    /// (408), or the network failed. `retry_after` is the receiver's own `Retry-After`.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Sending the same message again cannot help: the receiver refused it (a 4xx other than
    /// 408 and 429), or the channel cannot reach it (an address the SSRF guard refuses).
    #[error("{reason}")]
    Final { reason: String },
}

impl DeliveryError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        DeliveryError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(self, DeliveryError::Final { .. })
    }
}

/// Sends a notification to one channel, once; retrying is the caller's business.
#[async_trait]
pub trait Deliver: Send + Sync {
    async fn deliver(
        &self,
        channel: &crate::channel::ChannelSpec,
        env: &Envelope,
    ) -> Result<(), DeliveryError>;
}

/// One rendered email: what every mail transport sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// One line, no control characters.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Sends an email channel's message: SMTP in `netmon up`, Amazon SES on AWS. Errors say what
/// the server answered (a 4xx SMTP reply or throttling is retryable, a 5xx is final) and never
/// carry the password.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(
        &self,
        channel: &crate::channel::EmailChannel,
        mail: &Mail,
    ) -> Result<(), DeliveryError>;
}

/// Where log channels write their lines.
pub trait LineSink: Send + Sync {
    fn line(&self, line: &str);
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no reply within {}", crate::duration::format_duration(*.0))]
    Timeout(std::time::Duration),
    #[error("the request could not be sent: {0}")]
    Send(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// EventRPC ("check now"): sends a probe job as a request and waits for its reply.
#[async_trait]
pub trait EventRpc: Send + Sync {
    /// Gives `job` a fresh correlation id, sends it, and waits at most `timeout` for the reply.
    async fn call(
        &self,
        job: crate::jobs::ProbeJob,
        timeout: std::time::Duration,
    ) -> Result<crate::rpc::RpcReply, RpcError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        assert_eq!(Expect::Absent.next_version("x", None).ok(), Some(1));
        assert_eq!(Expect::Any.next_version("x", None).ok(), Some(1));
        assert_eq!(Expect::Any.next_version("x", Some(4)).ok(), Some(5));
        assert_eq!(Expect::Version(4).next_version("x", Some(4)).ok(), Some(5));
        for (cur, exp) in [
            (Some(1), Expect::Absent),
            (Some(4), Expect::Version(3)),
            (None, Expect::Version(1)),
        ] {
            assert!(matches!(
                exp.next_version("x", cur),
                Err(StoreError::Conflict(_))
            ));
        }
        assert!(matches!(
            Expect::Any.next_version("x", Some(u64::MAX)),
            Err(StoreError::Corrupt(_))
        ));
    }
}
