//! What a probe concluded ([`ProbeResult`]) from what it saw ([`Observation`]).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::ids::{TargetId, TenantId};
use crate::observation::{ConditionResult, ErrorKind, Observation, PhaseTimings, ProbeError};
use crate::target::TargetSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub tenant: TenantId,
    pub target: TargetId,
    pub location: String,
    /// The instant this probe was scheduled for (its job's slot; a heartbeat miss's deadline, a
    /// ping's arrival). Identifies the evidence: a second result for the same slot of a location
    /// is a duplicate. `None` for results written before slots existed and for "check now".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub timings: PhaseTimings,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

impl ProbeResult {
    /// The slot this result counts for: its scheduled instant, or when it started.
    pub fn slot(&self) -> DateTime<Utc> {
        self.slot.unwrap_or(self.started_at)
    }

    pub fn failed_conditions(&self) -> impl Iterator<Item = &ConditionResult> {
        self.conditions.iter().filter(|c| !c.passed)
    }
}

/// Judges an observation against the target's conditions. A probe error makes the result down,
/// except a connection-level error when a condition asks about `[CONNECTED]` (so "this port must
/// stay closed" can be expressed).
pub fn judge(
    tenant: &TenantId,
    spec: &TargetSpec,
    location: &str,
    started_at: DateTime<Utc>,
    obs: &Observation,
) -> ProbeResult {
    let defaults;
    let conditions: &[Condition] = if spec.conditions.is_empty() {
        defaults = spec.check.default_conditions();
        &defaults
    } else {
        &spec.conditions
    };
    let now = started_at + chrono::Duration::microseconds((obs.timings.total_ms * 1000.0) as i64);
    let results: Vec<ConditionResult> = conditions.iter().map(|c| c.evaluate(obs, now)).collect();
    let all_pass = results.iter().all(|r| r.passed);
    let error_tolerated = match &obs.error {
        None => true,
        Some(e) => {
            matches!(
                e.kind,
                ErrorKind::Connect | ErrorKind::Dns | ErrorKind::Timeout
            ) && conditions
                .iter()
                .any(|c| c.source().contains("[CONNECTED]"))
        }
    };
    ProbeResult {
        tenant: tenant.clone(),
        target: spec.id.clone(),
        location: location.to_owned(),
        started_at,
        slot: None,
        duration_ms: obs.timings.total_ms,
        timings: obs.timings,
        outcome: if all_pass && error_tolerated {
            Outcome::Up
        } else {
            Outcome::Down
        },
        status_code: obs.status,
        ip: obs.ip,
        certificate_expires_at: obs.certificate_expires_at,
        conditions: results,
        error: obs.error.clone(),
    }
}
