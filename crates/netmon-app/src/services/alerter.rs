//! Alerter: applies probe results to each target's check state and records incident events in
//! the outbox in the same write.

use std::collections::HashMap;
use std::sync::Arc;

use netmon_core::TargetId;
use netmon_core::events::{AlertContext, Envelope, Event, ProbeBatch, Subject};
use netmon_core::group::Group;
use netmon_core::incident::{CheckState, IncidentEvent, Rules, evaluate};
use netmon_core::maintenance::{MaintenanceWindow, in_maintenance, in_maintenance_tagged};
use netmon_core::ports::{
    Clock, Expect, IncidentRecord, MaintenanceStore, ReplyStore, StateStore, StoreError,
    TargetStore, Versioned,
};
use netmon_core::result::ProbeResult;
use tracing::{debug, info, warn};

use super::relay::OutboxRelay;
use crate::error::HandleError;

/// How incident events leave the outbox after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// Publish before returning (Lambda: no background work survives the invocation).
    Inline,
    /// Wake a relay task (one process).
    Background,
}

/// What one batch did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AlertReport {
    pub results: usize,
    pub state_writes: usize,
    pub events: usize,
    pub skipped_unknown_target: usize,
    /// Results that changed something inside a maintenance window, which held back their new
    /// incidents and reminders (steady results never read the windows, so are not counted).
    pub in_maintenance: usize,
    /// Whether an EventRPC reply record was written for this batch.
    pub replied: bool,
}

pub struct Alerter {
    targets: Arc<dyn TargetStore>,
    states: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    relay: Arc<OutboxRelay>,
    mode: RelayMode,
    maintenance: Option<Arc<dyn MaintenanceStore>>,
    replies: Option<Arc<dyn ReplyStore>>,
}

const COMMIT_ATTEMPTS: usize = 5;

impl Alerter {
    pub fn new(
        targets: Arc<dyn TargetStore>,
        states: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        relay: Arc<OutboxRelay>,
        mode: RelayMode,
    ) -> Self {
        Self {
            targets,
            states,
            clock,
            relay,
            mode,
            maintenance: None,
            replies: None,
        }
    }

    /// Holds back new incidents and reminders of targets inside a maintenance window.
    pub fn with_maintenance(mut self, store: Arc<dyn MaintenanceStore>) -> Self {
        self.maintenance = Some(store);
        self
    }

    /// Writes an EventRPC reply record for each batch that carries a correlation id ("check
    /// now" in the cloud, where the api polls the record).
    pub fn with_replies(mut self, store: Arc<dyn ReplyStore>) -> Self {
        self.replies = Some(store);
        self
    }

    pub async fn handle(&self, env: &Envelope) -> Result<AlertReport, HandleError> {
        let Event::ProbeCompleted(batch) = &env.event else {
            return Err(HandleError::Permanent(format!(
                "alerter does not handle {}",
                env.event_type().as_str()
            )));
        };
        let mut results: Vec<&ProbeResult> = batch.results.iter().collect();
        // Oldest slot first, so a batch holding two results of one target applies both.
        results.sort_by_key(|r| r.slot());
        let mut report = AlertReport {
            results: results.len(),
            ..AlertReport::default()
        };
        results.retain(|r| {
            let ours = r.tenant == env.tenant;
            if !ours {
                warn!(envelope = %env.id, result_tenant = %r.tenant, "result tenant differs from envelope tenant; skipped");
            }
            ours
        });
        let carried: HashMap<&TargetId, &AlertContext> =
            batch.targets.iter().map(|c| (&c.id, c)).collect();
        let mut ids: Vec<TargetId> = results.iter().map(|r| r.target.clone()).collect();
        ids.sort();
        ids.dedup();
        // The batch's states in one round trip; `apply` keeps them current as it commits. The
        // tenant's maintenance windows (a batch holds one tenant's results) are read only
        // when a result changes something: a window can hold a change back, never make one,
        // so the steady state costs this one read.
        let mut states: HashMap<TargetId, Versioned<CheckState>> = if ids.is_empty() {
            HashMap::new()
        } else if let Some(group) = range_read(batch, &ids) {
            self.states
                .load_group_states(&env.tenant, group, &ids)
                .await?
                .into_iter()
                .collect()
        } else {
            self.states
                .load_states(&env.tenant, &ids)
                .await?
                .into_iter()
                .collect()
        };
        let mut windows = None;
        let mut committed = Vec::new();
        for result in results {
            let ctx = carried.get(&result.target).copied();
            self.apply(
                result,
                ctx,
                &mut states,
                &mut windows,
                &mut report,
                &mut committed,
            )
            .await?;
        }
        // After the results are applied, so a caller reading the target next sees its state.
        if let (Some(store), Some(reply)) =
            (&self.replies, crate::rpc::reply_for(env, self.clock.now()))
        {
            store
                .put_reply(&reply, self.clock.now() + crate::rpc::REPLY_KEEP)
                .await?;
            report.replied = true;
        }
        match self.mode {
            // The events this batch committed, without reading the outbox (its cloud index
            // lags behind writes, and the steady state should cost no request beyond the
            // results' own reads). Whatever fails stays pending; the scheduler sweeps the
            // outbox every minute.
            RelayMode::Inline if !committed.is_empty() => {
                self.relay.publish_committed(committed).await?;
            }
            RelayMode::Inline => {}
            RelayMode::Background if report.events > 0 => self.relay.kick(),
            RelayMode::Background => {}
        }
        Ok(report)
    }

    /// The tenant's maintenance windows, read on first use in a batch.
    async fn windows<'w>(
        &self,
        tenant: &netmon_core::TenantId,
        cache: &'w mut Option<Vec<MaintenanceWindow>>,
    ) -> Result<&'w [MaintenanceWindow], HandleError> {
        if cache.is_none() {
            let read = match &self.maintenance {
                Some(store) => store.list_windows(tenant).await?,
                None => Vec::new(),
            };
            *cache = Some(read);
        }
        Ok(cache.as_deref().unwrap_or_default())
    }

    /// `stored` holds the batch's states as loaded (a target without one is absent) and is
    /// updated on each commit, so a later result of the same target starts from it.
    async fn apply(
        &self,
        result: &ProbeResult,
        carried: Option<&AlertContext>,
        stored: &mut HashMap<TargetId, Versioned<CheckState>>,
        windows: &mut Option<Vec<MaintenanceWindow>>,
        report: &mut AlertReport,
        committed: &mut Vec<Envelope>,
    ) -> Result<(), HandleError> {
        let now = self.clock.now();
        // Most results change nothing; with what the job carried of the target, that is known
        // without reading it (or the maintenance windows, which only hold changes back). The
        // events built here are dropped (they would lack the target's name and check): a
        // change is evaluated again below, on the target as it is now.
        let mut maintenance_counted = false;
        if let Some(ctx) = carried {
            let mut rules = Rules::for_context(ctx);
            let state = stored
                .get(&result.target)
                .map_or_else(CheckState::default, |v| v.value.clone());
            let unnamed = Subject {
                target_id: ctx.id.clone(),
                target_name: String::new(),
                check: String::new(),
            };
            if !evaluate(&state, result, &unnamed, &rules, now).changed {
                return Ok(());
            }
            let windows = self.windows(&result.tenant, windows).await?;
            if in_maintenance_tagged(windows, &ctx.id, &ctx.tags, result.started_at) {
                rules.suppress_new = true;
                report.in_maintenance += 1;
                maintenance_counted = true;
                if !evaluate(&state, result, &unnamed, &rules, now).changed {
                    return Ok(());
                }
            }
        }
        // A change (or nothing carried): read the target, strongly consistent, right before
        // committing, so a target deleted or disabled since its job was planned gets no state
        // and no incident, and events name it as it is now.
        let Some(target) = self
            .targets
            .get_target(&result.tenant, &result.target)
            .await?
        else {
            // Deleted between scheduling and now: nothing to alert on, and retrying cannot help.
            info!(tenant = %result.tenant, target = %result.target, "result for unknown target ignored");
            report.skipped_unknown_target += 1;
            return Ok(());
        };
        if !target.spec.enabled {
            return Ok(());
        }
        let mut rules = Rules::for_target(&target.spec);
        let windows = self.windows(&result.tenant, windows).await?;
        if in_maintenance(windows, &target.spec, result.started_at) {
            rules.suppress_new = true;
            if !maintenance_counted {
                report.in_maintenance += 1;
            }
        }
        let subject = Subject::of(&target.spec);
        for attempt in 1..=COMMIT_ATTEMPTS {
            // The batch's snapshot first; after a conflict, the state as it is now.
            if attempt > 1 {
                match self
                    .states
                    .load_state(&result.tenant, &result.target)
                    .await?
                {
                    Some(v) => stored.insert(result.target.clone(), v),
                    None => stored.remove(&result.target),
                };
            }
            let (state, expect) = match stored.get(&result.target) {
                Some(v) => (v.value.clone(), Expect::Version(v.version)),
                None => (CheckState::default(), Expect::Absent),
            };
            let eval = evaluate(&state, result, &subject, &rules, self.clock.now());
            if !eval.changed {
                return Ok(());
            }
            let incidents = incident_records(&state, &eval.events, result);
            let envelopes: Vec<Envelope> = eval
                .events
                .iter()
                .map(|e| incident_envelope(e, result, self.clock.now()))
                .collect();
            match self
                .states
                .commit_state(
                    &result.tenant,
                    &result.target,
                    expect,
                    &eval.state,
                    &incidents,
                    &envelopes,
                )
                .await
            {
                Ok(version) => {
                    stored.insert(
                        result.target.clone(),
                        Versioned {
                            value: eval.state,
                            version,
                        },
                    );
                    report.state_writes += 1;
                    report.events += envelopes.len();
                    for e in &envelopes {
                        info!(event = %e.id, kind = e.event_type().as_str(), target = %result.target, "incident event recorded");
                    }
                    committed.extend(envelopes);
                    return Ok(());
                }
                Err(StoreError::Conflict(why)) => {
                    debug!(attempt, %why, target = %result.target, "state changed underneath; re-evaluating");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(HandleError::Retryable(format!(
            "state of {}/{} kept changing during {COMMIT_ATTEMPTS} attempts",
            result.tenant, result.target
        )))
    }
}

/// A range read of a group costs about one unit per this many states (~300 B each, 4 KB a
/// unit), a read by key one unit per state.
const STATES_PER_RANGE_UNIT: u64 = 12;

/// The group to read the batch's states from as one range: when the job says which group its
/// targets are in and how many targets that group has, every target is in it, and reading the
/// whole group costs no more than reading `ids` one by one.
fn range_read(batch: &ProbeBatch, ids: &[TargetId]) -> Option<Group> {
    let (level, size) = (batch.group_level?, batch.group_size?);
    let group = Group::of(ids.first()?, level);
    let all_in = ids.iter().all(|id| Group::of(id, level) == group);
    let cheaper = u64::from(size) <= STATES_PER_RANGE_UNIT * ids.len() as u64;
    (all_in && cheaper).then_some(group)
}

fn incident_envelope(
    event: &IncidentEvent,
    result: &ProbeResult,
    now: chrono::DateTime<chrono::Utc>,
) -> Envelope {
    let payload = match event.clone() {
        IncidentEvent::Opened(e) => Event::IncidentOpened(e),
        IncidentEvent::Resolved(e) => Event::IncidentResolved(e),
        IncidentEvent::Reminder(e) => Event::IncidentReminder(e),
    };
    // Derived, not random: re-deriving the same transition yields the same id downstream.
    let id = event.envelope_id(&result.tenant);
    Envelope::with_id(id, payload, result.tenant.clone(), "alerter", now)
}

fn incident_records(
    before: &CheckState,
    events: &[IncidentEvent],
    result: &ProbeResult,
) -> Vec<IncidentRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            IncidentEvent::Opened(o) => Some(IncidentRecord {
                tenant: result.tenant.clone(),
                incident_id: o.incident_id.clone(),
                target_id: o.subject.target_id.clone(),
                target_name: o.subject.target_name.clone(),
                opened_at: o.opened_at,
                resolved_at: None,
                cause: o.cause.clone(),
            }),
            IncidentEvent::Resolved(r) => {
                let cause = before.incident.as_ref().map(|i| i.cause.clone())?;
                Some(IncidentRecord {
                    tenant: result.tenant.clone(),
                    incident_id: r.incident_id.clone(),
                    target_id: r.subject.target_id.clone(),
                    target_name: r.subject.target_name.clone(),
                    opened_at: r.opened_at,
                    resolved_at: Some(r.resolved_at),
                    cause,
                })
            }
            IncidentEvent::Reminder(_) => None,
        })
        .collect()
}
