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
    judge_until(tenant, spec, location, started_at, obs, &|| None)
}

/// As [`judge`], asking `stop` before each condition: once it gives a reason (a time budget
/// spent, the caller gone), the conditions left are not evaluated and fail, showing the reason.
/// One condition's cost is bounded by the condition and body size limits, so this bounds the
/// whole evaluation.
pub fn judge_until(
    tenant: &TenantId,
    spec: &TargetSpec,
    location: &str,
    started_at: DateTime<Utc>,
    obs: &Observation,
    stop: &dyn Fn() -> Option<&'static str>,
) -> ProbeResult {
    let defaults;
    let conditions: &[Condition] = if spec.conditions.is_empty() {
        defaults = spec.check.default_conditions();
        &defaults
    } else {
        &spec.conditions
    };
    let now = started_at + chrono::Duration::microseconds((obs.timings.total_ms * 1000.0) as i64);
    let mut stopped = None;
    let results: Vec<ConditionResult> = conditions
        .iter()
        .map(|c| {
            stopped = stopped.or_else(stop);
            match stopped {
                None => c.evaluate(obs, now),
                Some(why) => ConditionResult {
                    condition: c.source().to_owned(),
                    passed: false,
                    actual: Some(format!("<not evaluated: {why}>")),
                },
            }
        })
        .collect();
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::conditions::MAX_CONDITION_CHARS;

    fn spec(conditions: &[String]) -> TargetSpec {
        serde_json::from_value(serde_json::json!({
            "id": "web",
            "http": {"url": "https://example.com/"},
            "conditions": conditions,
        }))
        .expect("a valid spec")
    }

    fn observed(body: String) -> Observation {
        Observation {
            connected: true,
            status: Some(200),
            body: Some(body),
            ..Observation::default()
        }
    }

    #[test]
    fn conditions_after_a_stop_are_not_evaluated_and_fail() {
        let spec = spec(&["[STATUS] == 200".into(), "[BODY] == ok".into()]);
        let asked = Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            (asked.get() > 1).then_some("the time limit was reached")
        };
        let r = judge_until(
            &TenantId::default_tenant(),
            &spec,
            "here",
            Utc::now(),
            &observed("ok".into()),
            &stop,
        );
        assert_eq!(r.outcome, Outcome::Down);
        assert!(r.conditions[0].passed);
        assert!(!r.conditions[1].passed);
        assert_eq!(
            r.conditions[1].actual.as_deref(),
            Some("<not evaluated: the time limit was reached>")
        );
        let r = judge(
            &TenantId::default_tenant(),
            &spec,
            "here",
            Utc::now(),
            &observed("ok".into()),
        );
        assert_eq!(r.outcome, Outcome::Up);
    }

    /// The most a target can ask of one evaluation: 50 conditions of the longest length, each
    /// as costly as the language allows, against a 64 KiB body. Bounded, and each condition on
    /// its own far below the time budget the prober gives an evaluation (so checking the budget
    /// between conditions bounds the whole).
    #[test]
    fn the_costliest_evaluation_is_bounded() {
        let piece = |n: usize| "a?".repeat(n / 2);
        let fill = |c: String| {
            let room = MAX_CONDITION_CHARS - c.chars().count();
            c.replace("PIECE", &piece(room))
        };
        let costly = [
            fill("[BODY] == pat(*PIECEb)".into()),
            fill("[BODY] == pat(*PIECE*b*)".into()),
            "[BODY] == pat(".to_owned() + &"*a".repeat(500) + "b)",
            fill("[BODY].x[0].y == pat(*PIECEb)".into()),
            "len([BODY]) == 1".to_owned(),
        ];
        let mut conditions = Vec::new();
        for c in costly.iter().cycle().take(50) {
            assert!(c.chars().count() <= MAX_CONDITION_CHARS, "{c}");
            conditions.push(c.clone());
        }
        let spec = spec(&conditions);
        for body in [
            "a".repeat(64 * 1024),
            format!("[{}]", "\"aaaaaaaaaaaaa\",".repeat(4000) + "1"),
        ] {
            let obs = observed(body);
            // `stop` is asked before each condition: the time between two asks is one
            // condition's cost.
            let last = Cell::new(Instant::now());
            let slowest = Cell::new(Duration::ZERO);
            let stop = || {
                slowest.set(slowest.get().max(last.get().elapsed()));
                last.set(Instant::now());
                None
            };
            let t = Instant::now();
            let r = judge_until(
                &TenantId::default_tenant(),
                &spec,
                "here",
                Utc::now(),
                &obs,
                &stop,
            );
            let took = t.elapsed();
            assert_eq!(r.conditions.len(), 50);
            assert!(r.conditions.iter().all(|c| !c.passed));
            eprintln!(
                "50 costly conditions: {took:?}, the slowest one {:?}",
                slowest.get()
            );
            assert!(
                slowest.get() < Duration::from_millis(500),
                "one condition took {:?}",
                slowest.get()
            );
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
    }
}
