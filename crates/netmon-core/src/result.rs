//! What a probe saw ([`Observation`]) and what it concluded ([`ProbeResult`]).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::ids::{TargetId, TenantId};
use crate::target::{CheckSpec, TargetSpec};

/// Milliseconds spent in each phase; absent when the phase did not happen (no TLS on http://,
/// no DNS for an IP literal, nothing after a refused connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<f64>,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Name did not resolve.
    Dns,
    /// TCP connect failed or was refused.
    Connect,
    /// The whole probe exceeded its timeout.
    Timeout,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The peer spoke broken HTTP (or DNS).
    Protocol,
    /// The SSRF guard refused the address.
    Blocked,
    /// Redirect limit reached, or a redirect to an unsupported scheme.
    Redirect,
    /// A heartbeat did not arrive within period + grace.
    Missed,
    /// The monitored job reported failure (`/ping/{token}/fail`).
    Reported,
    /// The probe itself failed (a bug or a resource limit), not the target.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Everything a probe measured; the input to condition evaluation. Bodies are truncated by the
/// probe engine and never leave the prober.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub connected: bool,
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub certificate_expires_at: Option<DateTime<Utc>>,
    pub dns_rcode: Option<String>,
    pub dns_answers: Vec<String>,
    pub ip: Option<IpAddr>,
    pub timings: PhaseTimings,
    pub error: Option<ProbeError>,
}

impl Observation {
    pub fn failed(error: ProbeError, total_ms: f64) -> Self {
        Self {
            error: Some(error),
            timings: PhaseTimings {
                total_ms,
                ..PhaseTimings::default()
            },
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionResult {
    pub condition: String,
    pub passed: bool,
    /// The resolved left-hand value, for "why did this fail" (`500`, `1843ms`, `<none>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub tenant: TenantId,
    pub target: TargetId,
    pub location: String,
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
    pub fn failed_conditions(&self) -> impl Iterator<Item = &ConditionResult> {
        self.conditions.iter().filter(|c| !c.passed)
    }
}

/// Conditions applied when a target lists none.
pub fn default_conditions(check: &CheckSpec) -> Vec<Condition> {
    let sources: &[&str] = match check {
        CheckSpec::Http(_) => &["[CONNECTED] == true", "[STATUS] < 400"],
        CheckSpec::Tcp(_) => &["[CONNECTED] == true"],
        CheckSpec::Dns(_) => &["[DNS_RCODE] == NOERROR"],
        CheckSpec::Heartbeat(_) => &[],
    };
    sources
        .iter()
        .filter_map(|s| Condition::parse(s).ok())
        .collect()
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
        defaults = default_conditions(&spec.check);
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
