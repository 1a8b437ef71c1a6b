//! The incident state machine: a pure function of (state, result, rules, now).
//!
//! Each location keeps its own consecutive counters; a location is down after
//! `failure_threshold` failures in a row and up again after `success_threshold` successes. The
//! target is down when at least `quorum` locations are down (N-of-M; 1 with one location).
//! Counters saturate at their thresholds, so a healthy target in steady state produces an
//! identical state and the caller writes nothing.
//!
//! Ordering and duplicates (SQS and SNS deliver at least once, in any order): a result belongs
//! to a slot, the instant its probe was scheduled for ([`ProbeResult::slot`]). Each location
//! remembers the slot of the newest result that changed it (its watermark); a result for that
//! slot or an older one is ignored, so a re-probe or redelivery of a slot counts once and a late
//! result can never move the state backwards. Counting toward a change needs adjacent slots:
//! a gap of more than one and a half intervals since the last counted result (a result still in
//! flight, or lost) starts the count again, so results that were not consecutive never add up
//! to an incident. A result older than [`Rules::max_age`] changes nothing: it is history.
//!
//! Locations that stop reporting (a prober renamed or removed) age out: a location whose
//! watermark is older than [`Rules::max_age`] is dropped when another location's result is
//! applied, so a location left down cannot hold an incident open forever. A reporting
//! location's watermark moves at least every half max age, even in steady state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::{
    AlertContext, IncidentCause, IncidentOpened, IncidentReminder, IncidentResolved, Subject,
};
use crate::result::{Outcome, ProbeResult};
use crate::target::{CheckSpec, TargetSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub reminder_interval: Option<chrono::Duration>,
    /// How often the target is probed (a heartbeat's period): consecutive slots are this far
    /// apart.
    pub interval: chrono::Duration,
    /// Every result moves the watermark, not only those that change the state: a heartbeat's
    /// results (pings and misses) are few, and a miss computed before a ping arrived must lose
    /// to that ping whatever order they come in.
    pub watermark_every_slot: bool,
    /// Locations that must be down at once to open an incident.
    pub quorum: u32,
    /// Set by the caller during a maintenance window or while a parent target is down: state is
    /// still tracked and incidents still resolve, but none opens and no reminder is sent.
    pub suppress_new: bool,
}

impl Rules {
    /// Results for slots older than this (ten intervals, at least six hours) are too late to
    /// change state: a redrive from a dead-letter queue, not news.
    pub fn max_age(&self) -> chrono::Duration {
        (self.interval * 10).max(chrono::Duration::hours(6))
    }

    /// Slots further apart than this are not adjacent: something between them is missing.
    fn adjacent(&self, earlier: DateTime<Utc>, later: DateTime<Utc>) -> bool {
        later - earlier <= self.interval + self.interval / 2
    }

    /// Heartbeats use 1/1: a missed deadline already includes the grace period, and one ping
    /// proves the job ran (Healthchecks semantics).
    pub fn for_target(spec: &TargetSpec) -> Self {
        let (failure_threshold, success_threshold) = match spec.check {
            CheckSpec::Heartbeat(_) => (1, 1),
            _ => (spec.failure_threshold.max(1), spec.success_threshold.max(1)),
        };
        Self {
            failure_threshold,
            success_threshold,
            reminder_interval: spec.reminder_interval.map(|d| d.as_chrono()),
            interval: match &spec.check {
                CheckSpec::Heartbeat(hb) => hb.period.as_chrono(),
                _ => spec.interval.as_chrono(),
            },
            watermark_every_slot: matches!(spec.check, CheckSpec::Heartbeat(_)),
            quorum: 1,
            suppress_new: false,
        }
    }

    /// The rules of a target from what a job carried of it: the same as
    /// [`for_target`](Self::for_target) on the spec it was taken from.
    pub fn for_context(ctx: &AlertContext) -> Self {
        Self {
            failure_threshold: ctx.failure_threshold.max(1),
            success_threshold: ctx.success_threshold.max(1),
            reminder_interval: ctx.reminder_interval.map(|d| d.as_chrono()),
            interval: ctx.interval.as_chrono(),
            watermark_every_slot: false,
            quorum: 1,
            suppress_new: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub locations: BTreeMap<String, LocationState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<OpenIncident>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationState {
    pub down: bool,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// The slot of the newest result that changed this location.
    pub watermark: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    pub cause: IncidentCause,
    pub last_notified_at: DateTime<Utc>,
    pub reminders_sent: u32,
}

/// What one result did.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub state: CheckState,
    pub events: Vec<IncidentEvent>,
    /// False when the new state equals the old one: nothing to persist.
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IncidentEvent {
    Opened(IncidentOpened),
    Resolved(IncidentResolved),
    Reminder(IncidentReminder),
}

impl IncidentEvent {
    pub fn incident_id(&self) -> &str {
        match self {
            IncidentEvent::Opened(e) => &e.incident_id,
            IncidentEvent::Resolved(e) => &e.incident_id,
            IncidentEvent::Reminder(e) => &e.incident_id,
        }
    }

    /// The bus envelope id: `<tenant>:<event_id>`. Incident ids are unique per tenant only.
    pub fn envelope_id(&self, tenant: &crate::ids::TenantId) -> String {
        format!("{tenant}:{}", self.event_id())
    }

    /// A stable id per logical event: re-evaluating the same transition yields the same id.
    pub fn event_id(&self) -> String {
        match self {
            IncidentEvent::Opened(e) => format!("{}:opened", e.incident_id),
            IncidentEvent::Resolved(e) => format!("{}:resolved", e.incident_id),
            IncidentEvent::Reminder(e) => format!("{}:reminder-{}", e.incident_id, e.reminder),
        }
    }
}

/// Incident ids are derived from the target and the opening result, so they are stable and
/// readable (`api-20261122T101500.000Z`).
pub fn incident_id(target: &str, opened_at: DateTime<Utc>) -> String {
    format!("{target}-{}", opened_at.format("%Y%m%dT%H%M%S%.3fZ"))
}

pub fn evaluate(
    state: &CheckState,
    result: &ProbeResult,
    subject: &Subject,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Evaluation {
    let unchanged = || Evaluation {
        state: state.clone(),
        events: Vec::new(),
        changed: false,
    };
    let slot = result.slot();
    let previous = state.locations.get(&result.location);
    if previous.is_some_and(|p| slot <= p.watermark) || slot < now - rules.max_age() {
        return unchanged();
    }

    let mut loc = previous.cloned().unwrap_or(LocationState {
        down: false,
        consecutive_failures: 0,
        consecutive_successes: 0,
        failing_since: None,
        watermark: slot,
    });
    // A count started again after a gap: this slot is now the last one counted, even when the
    // counters end as they were (1 of 2 again), or every later result would look non-adjacent.
    let mut restarted = false;
    match result.outcome {
        Outcome::Up => {
            loc.consecutive_failures = 0;
            loc.failing_since = None;
            if loc.down && loc.consecutive_successes > 0 && !rules.adjacent(loc.watermark, slot) {
                loc.consecutive_successes = 0;
                restarted = true;
            }
            loc.consecutive_successes =
                (loc.consecutive_successes + 1).min(rules.success_threshold);
            if loc.down && loc.consecutive_successes >= rules.success_threshold {
                loc.down = false;
            }
        }
        Outcome::Down => {
            loc.consecutive_successes = 0;
            if !loc.down && loc.consecutive_failures > 0 && !rules.adjacent(loc.watermark, slot) {
                loc.consecutive_failures = 0;
                loc.failing_since = None;
                restarted = true;
            }
            loc.failing_since.get_or_insert(result.started_at);
            loc.consecutive_failures = (loc.consecutive_failures + 1).min(rules.failure_threshold);
            if !loc.down && loc.consecutive_failures >= rules.failure_threshold {
                loc.down = true;
            }
        }
    }
    let location_changed = match previous {
        None => true,
        Some(p) => {
            let mut p = p.clone();
            p.watermark = loc.watermark;
            p != loc
        }
    };
    // In steady state the watermark still moves now and then (one write per half max age), so
    // a location that reports is never taken for one that stopped.
    let refresh = slot - loc.watermark >= rules.max_age() / 2;
    if location_changed || restarted || refresh || rules.watermark_every_slot {
        loc.watermark = slot;
    }

    let mut next = state.clone();
    next.locations.insert(result.location.clone(), loc);
    // Locations that stopped reporting (renamed or removed) age out, or one left down would
    // hold the target down forever.
    let oldest = now - rules.max_age();
    next.locations
        .retain(|name, l| *name == result.location || l.watermark >= oldest);
    let down = next.locations.values().filter(|l| l.down).count();
    let quorum = usize::try_from(rules.quorum.max(1))
        .unwrap_or(usize::MAX)
        .min(next.locations.len());
    let target_down = down >= quorum;

    let status = if target_down {
        Status::Down
    } else {
        Status::Up
    };
    if status != next.status {
        next.status = status;
        next.status_since = Some(result.started_at);
    }

    let mut events = Vec::new();
    match (&mut next.incident, target_down) {
        (None, true) if !rules.suppress_new => {
            let failing_since = next
                .locations
                .values()
                .filter_map(|l| l.failing_since)
                .min()
                .unwrap_or(result.started_at);
            let cause = IncidentCause {
                location: result.location.clone(),
                failing_since,
                status_code: result.status_code,
                error: result.error.clone(),
                failed_conditions: result.failed_conditions().cloned().collect(),
            };
            let id = incident_id(subject.target_id.as_str(), result.started_at);
            events.push(IncidentEvent::Opened(IncidentOpened {
                incident_id: id.clone(),
                subject: subject.clone(),
                opened_at: result.started_at,
                cause: cause.clone(),
            }));
            next.incident = Some(OpenIncident {
                id,
                opened_at: result.started_at,
                cause,
                last_notified_at: now,
                reminders_sent: 0,
            });
        }
        (Some(open), true) => {
            if let Some(every) = rules.reminder_interval
                && !rules.suppress_new
                && now - open.last_notified_at >= every
            {
                open.reminders_sent += 1;
                open.last_notified_at = now;
                events.push(IncidentEvent::Reminder(IncidentReminder {
                    incident_id: open.id.clone(),
                    subject: subject.clone(),
                    opened_at: open.opened_at,
                    reminder: open.reminders_sent,
                    ongoing_s: (now - open.opened_at).num_seconds(),
                    cause: open.cause.clone(),
                }));
            }
        }
        (Some(open), false) => {
            // With several locations, the resolving result may have started before the one
            // that opened the incident; an incident never ends before it began.
            let resolved_at = result.started_at.max(open.opened_at);
            events.push(IncidentEvent::Resolved(IncidentResolved {
                incident_id: open.id.clone(),
                subject: subject.clone(),
                opened_at: open.opened_at,
                resolved_at,
                duration_s: (resolved_at - open.opened_at).num_seconds(),
                cause: Some(open.cause.clone()),
            }));
            next.incident = None;
        }
        _ => {}
    }

    let changed = next != *state;
    Evaluation {
        state: next,
        events,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TargetId, TenantId};
    use crate::observation::{ConditionResult, PhaseTimings};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn subject() -> Subject {
        Subject {
            target_id: TargetId::parse("api").unwrap(),
            target_name: "API".into(),
            check: "GET http://x/".into(),
        }
    }

    fn rules() -> Rules {
        Rules {
            failure_threshold: 3,
            success_threshold: 2,
            reminder_interval: None,
            interval: chrono::Duration::seconds(60),
            watermark_every_slot: false,
            quorum: 1,
            suppress_new: false,
        }
    }

    #[test]
    fn a_carried_context_gives_the_rules_of_its_spec() {
        let spec =
            |json: serde_json::Value| -> TargetSpec { serde_json::from_value(json).unwrap() };
        for s in [
            spec(serde_json::json!({"id": "a", "http": {"url": "http://x/"}})),
            spec(
                serde_json::json!({"id": "b", "tcp": {"host": "x", "port": 1},
                "interval": "10s", "timeout": "5s", "failure_threshold": 4, "success_threshold": 3,
                "reminder_interval": "1h", "tags": ["db"]}),
            ),
        ] {
            let ctx = AlertContext::of(&s).expect("an enabled probe target");
            assert_eq!(Rules::for_context(&ctx), Rules::for_target(&s), "{s:?}");
        }
        let heartbeat = spec(serde_json::json!({"id": "h", "heartbeat": {"period": "1h"}}));
        let disabled = spec(
            serde_json::json!({"id": "d", "tcp": {"host": "x", "port": 1},
            "enabled": false}),
        );
        assert_eq!(AlertContext::of(&heartbeat), None);
        assert_eq!(AlertContext::of(&disabled), None);
    }

    fn result(at: i64, outcome: Outcome, location: &str) -> ProbeResult {
        ProbeResult {
            tenant: TenantId::default_tenant(),
            target: TargetId::parse("api").unwrap(),
            location: location.into(),
            started_at: t(at),
            slot: None,
            duration_ms: 5.0,
            timings: PhaseTimings::default(),
            outcome,
            status_code: Some(if outcome == Outcome::Up { 200 } else { 500 }),
            ip: None,
            certificate_expires_at: None,
            conditions: vec![ConditionResult {
                condition: "[STATUS] == 200".into(),
                passed: outcome == Outcome::Up,
                actual: Some("500".into()),
            }],
            error: None,
        }
    }

    /// Feeds outcomes (one per 60 s) and returns the final state and every event type emitted.
    fn run(rules: &Rules, outcomes: &[(Outcome, &str)]) -> (CheckState, Vec<String>, usize) {
        let mut state = CheckState::default();
        let mut kinds = Vec::new();
        let mut writes = 0;
        for (i, (o, loc)) in outcomes.iter().enumerate() {
            let at = i as i64 * 60;
            let ev = evaluate(&state, &result(at, *o, loc), &subject(), rules, t(at));
            writes += usize::from(ev.changed);
            for e in &ev.events {
                kinds.push(match e {
                    IncidentEvent::Opened(_) => "opened".to_owned(),
                    IncidentEvent::Resolved(_) => "resolved".to_owned(),
                    IncidentEvent::Reminder(r) => format!("reminder{}", r.reminder),
                });
            }
            state = ev.state;
        }
        (state, kinds, writes)
    }

    use Outcome::{Down as D, Up as U};

    #[test]
    fn opens_after_exactly_failure_threshold_and_resolves_after_success_threshold() {
        let (s, ev, _) = run(&rules(), &[(U, "a"), (D, "a"), (D, "a")]);
        assert!(ev.is_empty() && s.status == Status::Up);
        let (s, ev, _) = run(&rules(), &[(U, "a"), (D, "a"), (D, "a"), (D, "a")]);
        assert_eq!(ev, ["opened"]);
        assert_eq!(s.status, Status::Down);
        let inc = s.incident.unwrap();
        assert_eq!(inc.cause.failing_since, t(60));
        assert_eq!(inc.opened_at, t(180));
        assert_eq!(inc.cause.failed_conditions.len(), 1);
        let (_, ev, _) = run(&rules(), &[(D, "a"), (D, "a"), (D, "a"), (U, "a")]);
        assert_eq!(ev, ["opened"]);
        let (s, ev, _) = run(
            &rules(),
            &[(D, "a"), (D, "a"), (D, "a"), (U, "a"), (U, "a")],
        );
        assert_eq!(ev, ["opened", "resolved"]);
        assert!(s.incident.is_none() && s.status == Status::Up);
    }

    #[test]
    fn interrupted_runs_do_not_count() {
        let (_, ev, _) = run(
            &rules(),
            &[(D, "a"), (D, "a"), (U, "a"), (D, "a"), (D, "a")],
        );
        assert!(ev.is_empty());
        // A single success while down does not resolve.
        let (s, ev, _) = run(
            &rules(),
            &[(D, "a"), (D, "a"), (D, "a"), (U, "a"), (D, "a"), (U, "a")],
        );
        assert_eq!(ev, ["opened"]);
        assert_eq!(s.status, Status::Down);
    }

    #[test]
    fn steady_state_writes_nothing() {
        let healthy = vec![(U, "a"); 50];
        let (_, ev, writes) = run(&rules(), &healthy);
        assert!(ev.is_empty());
        // First result creates the location, second saturates the success counter.
        assert_eq!(writes, 2);
        let mut down = vec![(D, "a"); 3];
        down.extend(vec![(D, "a"); 40]);
        let (_, ev, writes) = run(&rules(), &down);
        assert_eq!(ev, ["opened"]);
        assert_eq!(writes, 3);
    }

    #[test]
    fn reminders_follow_the_interval() {
        let mut r = rules();
        r.reminder_interval = Some(chrono::Duration::minutes(5));
        let (_, ev, _) = run(&r, &vec![(D, "a"); 14]);
        // opened at minute 2, reminders at minutes 7 and 12.
        assert_eq!(ev, ["opened", "reminder1", "reminder2"]);
    }

    #[test]
    fn stale_and_duplicate_results_are_ignored() {
        let r = rules();
        let mut s = CheckState::default();
        for at in [0, 60, 120] {
            s = evaluate(&s, &result(at, D, "a"), &subject(), &r, t(at)).state;
        }
        assert!(s.incident.is_some());
        for at in [180, 240] {
            s = evaluate(&s, &result(at, U, "a"), &subject(), &r, t(at)).state;
        }
        assert!(s.incident.is_none());
        // A failure from before the recovery arrives late: no change, no event.
        let late = evaluate(&s, &result(100, D, "a"), &subject(), &r, t(300));
        assert!(!late.changed && late.events.is_empty());
        // The resolving result redelivered: no second `resolved`.
        let dup = evaluate(&s, &result(240, U, "a"), &subject(), &r, t(300));
        assert!(!dup.changed && dup.events.is_empty());
    }

    #[test]
    fn quorum_needs_enough_locations() {
        let mut r = rules();
        r.failure_threshold = 1;
        r.quorum = 2;
        let (s, ev, _) = run(&r, &[(U, "eu"), (U, "us"), (D, "eu"), (D, "eu")]);
        assert!(
            ev.is_empty(),
            "one location down of two must not open: {ev:?}"
        );
        assert_eq!(s.status, Status::Up);
        let (_, ev, _) = run(&r, &[(U, "eu"), (U, "us"), (D, "eu"), (D, "us")]);
        assert_eq!(ev, ["opened"]);
    }

    #[test]
    fn suppression_holds_back_new_incidents_but_not_resolution() {
        let mut r = rules();
        r.suppress_new = true;
        let (s, ev, _) = run(&r, &[(D, "a"); 5]);
        assert!(ev.is_empty());
        assert_eq!(s.status, Status::Down);
        // Window ends while still down: the next failure opens.
        let ev = evaluate(&s, &result(600, D, "a"), &subject(), &rules(), t(600));
        assert_eq!(ev.events.len(), 1);
        assert!(matches!(ev.events[0], IncidentEvent::Opened(_)));
    }

    /// The alerter reads maintenance windows only for a result that changes something, which
    /// holds only if suppression never turns "nothing changed" into a change. Random walks over
    /// outcomes, locations, late and repeated slots, thresholds and reminders, with each
    /// result evaluated both ways from the same state.
    #[test]
    fn suppression_never_makes_a_change() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut checked_unchanged = 0;
        for walk in 0..200 {
            let mut plain = rules();
            plain.failure_threshold = 1 + next(3) as u32;
            plain.success_threshold = 1 + next(3) as u32;
            plain.quorum = 1 + next(2) as u32;
            plain.reminder_interval =
                (next(2) == 0).then(|| chrono::Duration::minutes(1 + next(5) as i64));
            let mut held = plain.clone();
            held.suppress_new = true;
            let mut state = CheckState::default();
            let mut slot = 0;
            for _ in 0..60 {
                slot += [0, 60, 60, 60, 120][next(5) as usize];
                let outcome = if next(3) == 0 {
                    Outcome::Down
                } else {
                    Outcome::Up
                };
                let location = ["a", "b"][next(2) as usize];
                let mut r = result(slot + next(30) as i64, outcome, location);
                // Now and then a result for an older slot (late, or a redelivery).
                let back = if next(8) == 0 { 60 * next(3) as i64 } else { 0 };
                r.slot = Some(t(slot - back));
                let now = t(slot + 40);
                let with = evaluate(&state, &r, &subject(), &held, now);
                let without = evaluate(&state, &r, &subject(), &plain, now);
                if !without.changed {
                    checked_unchanged += 1;
                    assert!(
                        !with.changed,
                        "walk {walk}: suppression changed {state:?} on {r:?}"
                    );
                }
                // Walk on as either side would: windows open and close.
                state = if next(2) == 0 {
                    with.state
                } else {
                    without.state
                };
            }
        }
        assert!(
            checked_unchanged > 1_000,
            "{checked_unchanged} unchanged evaluations"
        );
    }

    #[test]
    fn event_ids_are_stable() {
        let (s, _, _) = run(&rules(), &[(D, "a"); 3]);
        let id = s.incident.unwrap().id;
        assert_eq!(id, incident_id("api", t(120)));
        assert!(id.starts_with("api-"));
    }

    fn at_slot(slot: i64, started: i64, outcome: Outcome) -> ProbeResult {
        let mut r = result(started, outcome, "a");
        r.slot = Some(t(slot));
        r
    }

    fn feed(rules: &Rules, results: &[ProbeResult], now: i64) -> (CheckState, Vec<IncidentEvent>) {
        feed_from(CheckState::default(), rules, results, now)
    }

    fn feed_from(
        mut state: CheckState,
        rules: &Rules,
        results: &[ProbeResult],
        now: i64,
    ) -> (CheckState, Vec<IncidentEvent>) {
        let mut events = Vec::new();
        for r in results {
            let ev = evaluate(&state, r, &subject(), rules, t(now));
            events.extend(ev.events);
            state = ev.state;
        }
        (state, events)
    }

    /// A job delivered twice (or re-planned by a retried tick) probes the same slot again, later:
    /// that is one failed slot, not two.
    #[test]
    fn a_second_probe_of_a_slot_is_not_more_evidence() {
        let r = rules();
        let (s, ev) = feed(
            &r,
            &[
                at_slot(0, 1, D),
                at_slot(60, 61, D),
                at_slot(60, 75, D),
                at_slot(60, 95, D),
            ],
            100,
        );
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(s.locations["a"].consecutive_failures, 2);
        let (_, ev) = feed(
            &r,
            &[at_slot(0, 1, D), at_slot(60, 61, D), at_slot(120, 121, D)],
            130,
        );
        assert_eq!(ev.len(), 1, "three failed slots open");
    }

    /// Failures are counted only over adjacent slots: a success in between that is late (or
    /// lost) must not let two separate failures add up, and it must not undo later evidence
    /// when it finally arrives.
    #[test]
    fn failures_with_a_gap_between_them_do_not_add_up() {
        let r = rules();
        let (s, ev) = feed(
            &r,
            &[at_slot(0, 0, D), at_slot(60, 60, D), at_slot(180, 180, D)],
            200,
        );
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(s.locations["a"].consecutive_failures, 1);
        // The Up of slot 120 arrives late: older than what was applied, so ignored.
        let late = evaluate(&s, &at_slot(120, 120, U), &subject(), &r, t(200));
        assert!(!late.changed);
        // Two more adjacent failures: now three in a row.
        let (down, ev) = feed_from(s, &r, &[at_slot(240, 240, D), at_slot(300, 300, D)], 310);
        assert_eq!(ev.len(), 1);
        // Recovery needs adjacent successes too.
        let (_, ev) = feed_from(down, &r, &[at_slot(360, 360, U), at_slot(480, 480, U)], 500);
        assert!(
            ev.is_empty(),
            "two successes two intervals apart do not resolve"
        );
    }

    #[test]
    fn results_older_than_the_max_age_change_nothing() {
        let r = rules();
        let ev = evaluate(
            &CheckState::default(),
            &at_slot(0, 0, D),
            &subject(),
            &r,
            t(0) + r.max_age() + chrono::Duration::seconds(1),
        );
        assert!(!ev.changed);
    }

    /// A miss computed before a ping arrived, applied after it, must lose to the ping: a
    /// heartbeat's watermark moves with every result.
    #[test]
    fn a_stale_heartbeat_miss_loses_to_a_newer_ping() {
        let mut r = rules();
        r.failure_threshold = 1;
        r.success_threshold = 1;
        r.watermark_every_slot = true;
        let (s, ev) = feed(&r, &[at_slot(0, 0, U), at_slot(100, 100, U)], 120);
        assert!(ev.is_empty());
        let miss = evaluate(&s, &at_slot(90, 90, D), &subject(), &r, t(120));
        assert!(miss.events.is_empty() && !miss.changed, "{:?}", miss.events);
        r.watermark_every_slot = false;
        let (s, _) = feed(&r, &[at_slot(0, 0, U), at_slot(100, 100, U)], 120);
        let miss = evaluate(&s, &at_slot(90, 90, D), &subject(), &r, t(120));
        assert_eq!(
            miss.events.len(),
            1,
            "without it the stale miss opens an incident"
        );
    }

    /// A gap restarts a count at 1, which may be what it already was: that slot is still the
    /// last counted, so the next adjacent result counts on (the sim found a success count
    /// stuck at 1 behind a lost slot, holding an incident open until the next outage).
    #[test]
    fn a_count_restarted_after_a_gap_counts_on() {
        let r = rules();
        let (down, ev) = feed(
            &r,
            &[at_slot(0, 0, D), at_slot(60, 60, D), at_slot(120, 120, D)],
            130,
        );
        assert_eq!(ev.len(), 1);
        // Slot 240 is lost: 180 and 300 are not adjacent, 300 and 360 are.
        let (s, ev) = feed_from(
            down,
            &r,
            &[
                at_slot(180, 180, U),
                at_slot(300, 300, U),
                at_slot(360, 360, U),
            ],
            370,
        );
        assert!(
            matches!(ev.as_slice(), [IncidentEvent::Resolved(_)]),
            "{ev:?}"
        );
        assert!(s.incident.is_none());
        // The same for failures.
        let mut two = rules();
        two.failure_threshold = 2;
        let (_, ev) = feed(
            &two,
            &[at_slot(0, 0, D), at_slot(120, 120, D), at_slot(180, 180, D)],
            190,
        );
        assert_eq!(
            ev.len(),
            1,
            "the restarted count reaches the threshold: {ev:?}"
        );
    }

    /// A location renamed while the target is down: the old one ages out after the max age and
    /// the incident resolves; a location that keeps reporting never ages out.
    #[test]
    fn a_location_that_stops_reporting_ages_out() {
        let r = rules();
        let mut s = CheckState::default();
        for at in [0, 60, 120] {
            s = evaluate(&s, &result(at, D, "eu"), &subject(), &r, t(at)).state;
        }
        assert!(s.incident.is_some());
        let mut resolved_at = None;
        let mut at = 180;
        while at < 8 * 3600 && resolved_at.is_none() {
            let ev = evaluate(&s, &result(at, U, "eu-2"), &subject(), &r, t(at));
            if ev
                .events
                .iter()
                .any(|e| matches!(e, IncidentEvent::Resolved(_)))
            {
                resolved_at = Some(at);
            }
            s = ev.state;
            at += 60;
        }
        let resolved_at = resolved_at.expect("resolved once the old location aged out");
        assert!(
            resolved_at > r.max_age().num_seconds(),
            "not before the max age"
        );
        assert!(resolved_at <= 120 + r.max_age().num_seconds() + 60);
        assert_eq!(s.locations.keys().collect::<Vec<_>>(), ["eu-2"]);

        // Down and reporting for eight hours: stays open, never aged out.
        let mut s = CheckState::default();
        let mut events = Vec::new();
        for i in 0..(8 * 60) {
            let ev = evaluate(&s, &result(i * 60, D, "eu"), &subject(), &r, t(i * 60));
            events.extend(ev.events);
            s = ev.state;
        }
        assert_eq!(events.len(), 1, "opened once, never resolved: {events:?}");
        assert!(s.incident.is_some());
    }
}
