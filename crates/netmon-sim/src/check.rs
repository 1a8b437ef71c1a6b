//! The invariants, checked against the ground truth after a run: per channel, each outage and
//! each missed heartbeat period gave exactly one incident, opened before resolved, and nothing
//! else did; a receiver that refuses is not retried; everything ends resolved and drained.

use std::collections::BTreeMap;

use chrono::Duration;
use netmon_core::TargetId;
use netmon_core::incident::{CheckState, Status};

use crate::net::{Attempt, NOTIFIER_IN};
use crate::scenario::Instant;
use crate::world::World;

/// A window in which one incident must (or may) open, and the instant its resolution may not
/// precede.
struct Expected {
    from: Instant,
    to: Instant,
    resolved_after: Instant,
    /// A heartbeat's incident is resolved by the ping that ends it, not a later one.
    resolved_by: Option<Instant>,
    must: bool,
    what: String,
}

/// One incident as a receiver accepted it: the index of its first accepted opened and
/// resolved among the receiver's attempts, when it opened, when it resolved.
type Accepted = (Option<usize>, Option<usize>, Instant, Option<Instant>);

/// Ticks run every minute, but several in a row can fail, and the miss's result can wait for
/// visibility timeouts: a heartbeat overdue for less than this may go unnoticed before its
/// next ping (it may still give an incident).
const MISS_MARGIN: i64 = 15;

/// Targets that may end down: a heartbeat whose last recorded ping is past its deadline at the
/// end (its last ping failed and the job did not try again).
fn overdue_at_end(world: &World) -> Vec<String> {
    let s = &world.scenario;
    s.beats
        .iter()
        .enumerate()
        .filter(|(i, b)| {
            let last = world
                .recorded_pings
                .iter()
                .filter(|(beat, _)| beat == i)
                .map(|(_, at)| *at)
                .max()
                .unwrap_or(s.start);
            last + b.period + b.grace < s.end
        })
        .map(|(_, b)| b.id.clone())
        .collect()
}

fn expected(world: &World) -> BTreeMap<String, Vec<Expected>> {
    let s = &world.scenario;
    let mut out: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for t in &s.http {
        let list = out.entry(t.id.clone()).or_default();
        let mut previous_end: Option<Instant> = None;
        for (from, to) in &t.outages {
            // While the scheduler is down or cannot plan, nothing is probed: an outage it
            // overlaps may have too few consecutive probed slots to open (it must not open
            // twice either).
            // And the outage holding the rename may have too few probes in either location.
            // And a spell between the previous outage and this one may have kept the previous
            // incident from resolving, so this outage continues it.
            let unprobed = s.unplanned().any(|(down, up)| down < to && from < up)
                || s.rename_at.is_some_and(|at| *from <= at && at < *to)
                || previous_end
                    .is_some_and(|end| s.unplanned().any(|(down, up)| *down < *from && end < *up));
            previous_end = Some(*to);
            list.push(Expected {
                from: *from,
                to: *to,
                resolved_after: *to,
                resolved_by: None,
                must: !unprobed,
                what: format!(
                    "outage {}..{}",
                    from.format("%H:%M:%S"),
                    to.format("%H:%M:%S")
                ),
            });
        }
    }
    for (i, b) in s.beats.iter().enumerate() {
        // From the pings that were recorded (a ping whose every attempt failed did not happen).
        let mut pings: Vec<Instant> = world
            .recorded_pings
            .iter()
            .filter(|(beat, _)| *beat == i)
            .map(|(_, at)| *at)
            .collect();
        pings.sort();
        pings.dedup();
        let list = out.entry(b.id.clone()).or_default();
        let mut last = s.start;
        for next in pings.iter().copied().chain(std::iter::once(s.end)) {
            let deadline = last + b.period + b.grace;
            if next > deadline {
                // Minutes the scheduler was down do not count toward the margin.
                let down: Duration = s
                    .unplanned()
                    .map(|(d, u)| ((*u).min(next) - (*d).max(deadline)).max(Duration::zero()))
                    .sum();
                let must = next > deadline + Duration::minutes(MISS_MARGIN) + down && next < s.end;
                // Nor toward the margin of the resolution: a ping whose publish was lost is
                // republished by a tick that can plan.
                let margin = Duration::minutes(MISS_MARGIN);
                let down_after: Duration = s
                    .unplanned()
                    .filter(|(d, u)| *d < next + margin && next < *u)
                    .map(|(d, u)| *u - (*d).max(next))
                    .sum();
                list.push(Expected {
                    from: deadline,
                    to: next,
                    resolved_after: next,
                    resolved_by: Some(next + margin + down_after),
                    must,
                    what: format!(
                        "no ping {}..{}",
                        last.format("%H:%M:%S"),
                        next.format("%H:%M:%S")
                    ),
                });
            }
            last = next;
        }
    }
    out
}

pub fn check(
    world: &World,
    states: &[(TargetId, CheckState)],
    pending: usize,
) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = Vec::new();
    let net = crate::net::lock(&world.net);
    let expected = expected(world);
    let overdue = overdue_at_end(world);
    for r in &world.scenario.receivers {
        let mine: Vec<&Attempt> = net.attempts.iter().filter(|a| a.channel == r.id).collect();
        if r.refuses {
            let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
            for a in &mine {
                *per_event.entry(a.event_id.as_str()).or_default() += 1;
            }
            for (event, n) in per_event {
                if n > 3 {
                    v.push((
                        format!(
                            "{}: refused {event} for good, yet was tried {n} times",
                            r.id
                        ),
                        vec![r.id.clone()],
                    ));
                }
            }
            continue;
        }
        for (target, windows) in &expected {
            let tags = vec![target.clone(), r.id.clone()];
            // Incidents as this receiver accepted them, in the order it accepted them.
            let mut incidents: BTreeMap<&str, Accepted> = BTreeMap::new();
            for (n, a) in mine
                .iter()
                .enumerate()
                .filter(|(_, a)| a.accepted && &a.target == target)
            {
                let e = incidents.entry(a.incident_id.as_str()).or_insert((
                    None,
                    None,
                    a.opened_at,
                    None,
                ));
                match a.kind {
                    "opened" => {
                        e.0.get_or_insert(n);
                    }
                    "resolved" => {
                        e.1.get_or_insert(n);
                        e.3 = a.resolved_at;
                    }
                    _ => {}
                }
            }
            let mut matched = vec![0usize; windows.len()];
            for (id, (opened, resolved, opened_at, resolved_at)) in &incidents {
                match (opened, resolved) {
                    (None, _) => v.push((
                        format!("{}: {id} resolved but never opened", r.id),
                        tags.clone(),
                    )),
                    (Some(_), None) if overdue.contains(target) => {}
                    (Some(_), None) => v.push((
                        format!("{}: {id} opened but never resolved", r.id),
                        tags.clone(),
                    )),
                    (Some(o), Some(s)) if s < o => v.push((
                        format!("{}: {id} resolved before it was opened", r.id),
                        tags.clone(),
                    )),
                    _ => {}
                }
                match windows
                    .iter()
                    .position(|w| w.from <= *opened_at && *opened_at <= w.to)
                {
                    Some(i) => {
                        matched[i] += 1;
                        if let (Some(at), Some(by)) = (resolved_at, windows[i].resolved_by)
                            && *at > by
                        {
                            v.push((
                                format!(
                                    "{}: {id} resolved at {}, not by the ping ending {}",
                                    r.id,
                                    at.format("%H:%M:%S"),
                                    windows[i].what
                                ),
                                tags.clone(),
                            ));
                        }
                        if let Some(at) = resolved_at
                            && *at < windows[i].resolved_after
                        {
                            v.push((
                                format!(
                                    "{}: {id} resolved at {} during {}",
                                    r.id,
                                    at.format("%H:%M:%S"),
                                    windows[i].what
                                ),
                                tags.clone(),
                            ));
                        }
                    }
                    None => v.push((
                        format!(
                            "{}: {id} (opened {}) matches no outage or missed heartbeat",
                            r.id,
                            opened_at.format("%H:%M:%S")
                        ),
                        tags.clone(),
                    )),
                }
            }
            for (w, n) in windows.iter().zip(matched) {
                if n > 1 || (w.must && n == 0) {
                    v.push((
                        format!("{}: {target}'s {} gave {n} incidents, not 1", r.id, w.what),
                        tags.clone(),
                    ));
                }
            }
        }
    }
    for (target, state) in states {
        if overdue.iter().any(|o| o == target.as_str()) {
            continue;
        }
        if state.incident.is_some() || state.status == Status::Down {
            v.push((
                format!(
                    "{target} ends {:?} with incident {:?}, but it is up",
                    state.status,
                    state.incident.as_ref().map(|i| &i.id)
                ),
                vec![target.to_string()],
            ));
        }
    }
    if pending > 0 {
        v.push((
            format!("{pending} incident events still in the outbox at the end"),
            vec!["*".into()],
        ));
    }
    if let Some(q) = net.queues.get(NOTIFIER_IN) {
        if !q.dlq.is_empty() {
            v.push((
                format!(
                    "{} notifications in the notifier's dead-letter queue",
                    q.dlq.len()
                ),
                vec!["*".into()],
            ));
        }
        if !q.msgs.is_empty() {
            let what: Vec<String> = q
                .msgs
                .values()
                .map(|m| {
                    let id = serde_json::from_str::<netmon_core::events::Envelope>(&m.body)
                        .map_or_else(|_| "?".to_owned(), |e| e.id);
                    format!(
                        "{id} (received {} times, visible {})",
                        m.receives,
                        m.visible_at.format("%H:%M:%S")
                    )
                })
                .collect();
            let mut tags = vec!["*".to_owned()];
            tags.extend(world.scenario.receivers.iter().map(|r| r.id.clone()));
            v.push((
                format!(
                    "{} notifications still queued at the end: {}",
                    q.msgs.len(),
                    what.join(", ")
                ),
                tags,
            ));
        }
    }
    v
}
