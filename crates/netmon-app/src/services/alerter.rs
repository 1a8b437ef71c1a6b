//! Alerter: applies probe results to each target's check state and records incident events in
//! the outbox in the same write.

use std::sync::Arc;

use netmon_core::events::{Envelope, Event, Subject};
use netmon_core::incident::{CheckState, IncidentEvent, Rules, evaluate};
use netmon_core::maintenance::{MaintenanceWindow, in_maintenance};
use netmon_core::ports::{
    Clock, Expect, IncidentRecord, MaintenanceStore, ReplyStore, StateStore, StoreError,
    TargetStore,
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
    /// Results whose incidents were held back by a maintenance window.
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
        // One read per batch: a batch holds one tenant's results.
        let windows = match (&self.maintenance, results.is_empty()) {
            (Some(store), false) => store.list_windows(&env.tenant).await?,
            _ => Vec::new(),
        };
        let mut committed = Vec::new();
        for result in results {
            if result.tenant != env.tenant {
                warn!(envelope = %env.id, result_tenant = %result.tenant, "result tenant differs from envelope tenant; skipped");
                continue;
            }
            self.apply(result, &windows, &mut report, &mut committed)
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

    async fn apply(
        &self,
        result: &ProbeResult,
        windows: &[MaintenanceWindow],
        report: &mut AlertReport,
        committed: &mut Vec<Envelope>,
    ) -> Result<(), HandleError> {
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
        if in_maintenance(windows, &target.spec, result.started_at) {
            rules.suppress_new = true;
            report.in_maintenance += 1;
        }
        let subject = Subject::of(&target.spec);
        for attempt in 1..=COMMIT_ATTEMPTS {
            let stored = self
                .states
                .load_state(&result.tenant, &result.target)
                .await?;
            let (state, expect) = match &stored {
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
                Ok(_) => {
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
