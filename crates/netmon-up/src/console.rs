//! What `netmon up` prints while it runs: one readable line per state change, so a terminal
//! shows the monitor working from the first check, not only when an incident opens.
//!
//! Per target and location: the first result (`up` or `failing`), a location starting to fail
//! (`failing`), and one passing again (`recovering` while the target's incident is open, else
//! `up`). Per target: `DOWN` when its incident opens and `UP` when it resolves. Steady results
//! print nothing. Everything stored (ids, names, error texts) is printed with unprintable
//! characters escaped, one line each.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use netmon_app::status::view::{format_ms, span};
use netmon_core::events::{Envelope, Event, IncidentCause};
use netmon_core::ids::escape_unprintable;
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::{TargetId, TenantId};

/// Console lines on stderr, next to the start-up lines.
pub(crate) struct StderrSink;

impl netmon_core::ports::LineSink for StderrSink {
    fn line(&self, line: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Locations remembered at most; past it the memory starts over (a few lines print again).
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub(crate) struct Console {
    last: HashMap<(TenantId, TargetId, String), Outcome>,
    open: HashSet<(TenantId, TargetId)>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

fn reason(r: &ProbeResult) -> String {
    if let Some(e) = &r.error {
        return e.message.clone();
    }
    let failed: Vec<String> = r
        .failed_conditions()
        .map(|c| match &c.actual {
            Some(a) => format!("{} (got {a})", c.condition),
            None => c.condition.clone(),
        })
        .collect();
    if !failed.is_empty() {
        return failed.join(", ");
    }
    r.status_code
        .map(|c| format!("HTTP {c}"))
        .unwrap_or_else(|| "failed".to_owned())
}

fn cause(c: &IncidentCause) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &c.error {
        parts.push(e.message.clone());
    }
    parts.extend(c.failed_conditions.iter().map(|f| match &f.actual {
        Some(a) => format!("{} (got {a})", f.condition),
        None => f.condition.clone(),
    }));
    if parts.is_empty()
        && let Some(code) = c.status_code
    {
        parts.push(format!("HTTP {code}"));
    }
    format!("{} at {}", parts.join(", "), c.location)
}

impl Console {
    /// The lines `env` is worth, in order.
    pub(crate) fn lines(&mut self, env: &Envelope) -> Vec<String> {
        let mut out = Vec::new();
        match &env.event {
            Event::ProbeCompleted(batch) => {
                if self.last.len() >= MAX_TRACKED {
                    self.last.clear();
                }
                for r in &batch.results {
                    let key = (r.tenant.clone(), r.target.clone(), r.location.clone());
                    let before = self.last.insert(key, r.outcome);
                    let open = self.open.contains(&(r.tenant.clone(), r.target.clone()));
                    let what = match (before, r.outcome) {
                        (Some(a), b) if a == b => continue,
                        (_, Outcome::Down) => format!("failing at {}: {}", r.location, reason(r)),
                        (Some(Outcome::Down), Outcome::Up) if open => {
                            format!(
                                "recovering at {} ({})",
                                r.location,
                                format_ms(r.duration_ms)
                            )
                        }
                        (_, Outcome::Up) => {
                            format!("up at {} ({})", r.location, format_ms(r.duration_ms))
                        }
                    };
                    out.push(format!("{}  {}  {what}", stamp(r.started_at), r.target));
                }
            }
            Event::IncidentOpened(e) => {
                self.open
                    .insert((env.tenant.clone(), e.subject.target_id.clone()));
                out.push(format!(
                    "{}  {}  DOWN: {} — incident opened",
                    stamp(e.opened_at),
                    e.subject.target_id,
                    cause(&e.cause)
                ));
            }
            Event::IncidentResolved(e) => {
                self.open
                    .remove(&(env.tenant.clone(), e.subject.target_id.clone()));
                out.push(format!(
                    "{}  {}  UP again after {} — incident resolved",
                    stamp(e.resolved_at),
                    e.subject.target_id,
                    span(e.duration_s)
                ));
            }
            _ => {}
        }
        out.into_iter()
            .map(|l| escape_unprintable(&l).into_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_core::events::{IncidentOpened, IncidentResolved, ProbeBatch, Subject};
    use netmon_core::observation::{ErrorKind, PhaseTimings, ProbeError};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_860_000 + s, 0).unwrap()
    }

    fn result(outcome: Outcome, s: i64) -> ProbeResult {
        ProbeResult {
            tenant: TenantId::default_tenant(),
            target: TargetId::parse("api").unwrap(),
            location: "laptop".into(),
            slot: None,
            started_at: at(s),
            duration_ms: 12.0,
            timings: PhaseTimings {
                dns_ms: None,
                connect_ms: None,
                tls_ms: None,
                first_byte_ms: None,
                total_ms: 12.0,
            },
            outcome,
            status_code: None,
            ip: None,
            certificate_expires_at: None,
            conditions: Vec::new(),
            error: (outcome == Outcome::Down)
                .then(|| ProbeError::new(ErrorKind::Connect, "refused\n\u{1b}[2J")),
        }
    }

    fn batch(r: ProbeResult) -> Envelope {
        Envelope::new(
            Event::ProbeCompleted(ProbeBatch {
                job_id: "j".into(),
                location: "laptop".into(),
                results: vec![r],
                group_level: None,
                group_size: None,
                targets: Vec::new(),
            }),
            TenantId::default_tenant(),
            "prober",
            at(0),
        )
    }

    fn subject() -> Subject {
        Subject {
            target_id: TargetId::parse("api").unwrap(),
            target_name: "API".into(),
            check: "GET http://x".into(),
        }
    }

    #[test]
    fn one_line_per_change_and_none_for_steady_results() {
        let mut c = Console::default();
        let cause = IncidentCause {
            location: "laptop".into(),
            failing_since: at(60),
            status_code: None,
            error: Some(ProbeError::new(ErrorKind::Connect, "refused")),
            failed_conditions: Vec::new(),
        };
        let mut all = Vec::new();
        for env in [
            batch(result(Outcome::Up, 0)),
            batch(result(Outcome::Up, 30)),
            batch(result(Outcome::Down, 60)),
            batch(result(Outcome::Down, 90)),
            Envelope::new(
                Event::IncidentOpened(IncidentOpened {
                    incident_id: "i".into(),
                    subject: subject(),
                    opened_at: at(90),
                    cause: cause.clone(),
                }),
                TenantId::default_tenant(),
                "alerter",
                at(90),
            ),
            batch(result(Outcome::Up, 120)),
            Envelope::new(
                Event::IncidentResolved(IncidentResolved {
                    incident_id: "i".into(),
                    subject: subject(),
                    opened_at: at(90),
                    resolved_at: at(150),
                    duration_s: 60,
                    cause: Some(cause),
                }),
                TenantId::default_tenant(),
                "alerter",
                at(150),
            ),
            batch(result(Outcome::Up, 150)),
        ] {
            all.extend(c.lines(&env));
        }
        let words: Vec<&str> = all
            .iter()
            .map(|l| {
                l.split("  ")
                    .nth(2)
                    .unwrap()
                    .split([' ', ':'])
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            words,
            ["up", "failing", "DOWN", "recovering", "UP"],
            "{all:#?}"
        );
        assert!(
            all[1].contains(r"refused\n\u{1b}[2J"),
            "escaped: {}",
            all[1]
        );
        assert!(all.iter().all(|l| !l.chars().any(char::is_control)));
        assert!(all[2].contains("refused at laptop"), "{}", all[2]);
    }
}
