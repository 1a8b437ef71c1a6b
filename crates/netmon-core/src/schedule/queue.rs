//! The polled targets of one process ordered by their next due instant. A wake-up pops what is
//! due and pushes each popped target's next instant, so its cost follows the targets due then,
//! not every target: `due_in` over all targets on each wake-up made 1,000 phased targets
//! (one wake-up every ~10 ms) cost quadratic work.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};

use super::{interval_ms, is_polled, last_due_ms, phase_ms};
use crate::target::Target;
use crate::{TargetId, TenantId};

/// Next due instants of the polled targets, kept so that a target is due in `(after, upto]` of
/// a wake-up exactly when [`super::due_in`] over the same targets would say so, at the same
/// instant. Callers pass the same `after` the old computation would have used.
#[derive(Default)]
pub struct DueQueue {
    /// (due millisecond, slot, generation); entries whose generation no longer matches their
    /// slot are stale (the target was edited or removed) and are dropped when they surface.
    heap: BinaryHeap<Reverse<(i64, usize, u64)>>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    index: HashMap<(TenantId, TargetId), usize>,
    generation: u64,
    epoch: u64,
    /// `take_due`'s working list, kept between wake-ups: a fresh one of a kilobyte or more each
    /// time made glibc consolidate its free lists (14 % of `netmon up`'s CPU at 10,000 targets).
    taken: Vec<(usize, usize, DateTime<Utc>)>,
}

struct Slot {
    target: Target,
    every: i64,
    phase: i64,
    due: i64,
    generation: u64,
    /// Position in the last loaded list: due targets come out in that order, as `due_in` gives
    /// them, so jobs are sharded the same way.
    order: usize,
    epoch: u64,
}

impl DueQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the targets with `targets` (the whole current list; heartbeats and disabled
    /// targets are left out). A target whose interval is unchanged keeps its due instant
    /// without recomputing it; new and re-timed ones are due next after `after`.
    pub fn replace(&mut self, targets: impl IntoIterator<Item = Target>, after: DateTime<Utc>) {
        self.epoch += 1;
        let after_ms = after.timestamp_millis();
        for (order, target) in targets.into_iter().filter(is_polled).enumerate() {
            let every = interval_ms(&target);
            let key = (target.tenant.clone(), target.id().clone());
            if let Some(&i) = self.index.get(&key)
                && let Some(slot) = self.slots[i].as_mut()
            {
                slot.order = order;
                slot.epoch = self.epoch;
                let retimed = slot.every != every;
                slot.target = target;
                if retimed {
                    slot.every = every;
                    slot.phase = phase_ms(&slot.target, every);
                    self.generation += 1;
                    slot.generation = self.generation;
                    slot.due = last_due_ms(after_ms, every, slot.phase).saturating_add(every);
                    self.heap.push(Reverse((slot.due, i, slot.generation)));
                }
                continue;
            }
            let phase = phase_ms(&target, every);
            self.generation += 1;
            let slot = Slot {
                due: last_due_ms(after_ms, every, phase).saturating_add(every),
                target,
                every,
                phase,
                generation: self.generation,
                order,
                epoch: self.epoch,
            };
            let i = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            };
            self.heap.push(Reverse((slot.due, i, slot.generation)));
            self.slots[i] = Some(slot);
            self.index.insert(key, i);
        }
        for i in 0..self.slots.len() {
            if self.slots[i]
                .as_ref()
                .is_some_and(|s| s.epoch != self.epoch)
                && let Some(gone) = self.slots[i].take()
            {
                self.index
                    .remove(&(gone.target.tenant.clone(), gone.target.id().clone()));
                self.free.push(i);
            }
        }
        // Stale entries of edited and removed targets must not outgrow the live ones.
        if self.heap.len() > 2 * self.index.len() + 64 {
            self.heap = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| Reverse((s.due, i, s.generation))))
                .collect();
        }
    }

    /// How many targets are queued.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The earliest due instant of any queued target (`None` when none is queued, or when it
    /// lies past the end of time).
    pub fn next_due(&mut self) -> Option<DateTime<Utc>> {
        while let Some(&Reverse((due, i, generation))) = self.heap.peek() {
            if self.live(i, generation) {
                return DateTime::from_timestamp_millis(due);
            }
            self.heap.pop();
        }
        None
    }

    /// The targets due by `upto` (since the previous call's `upto`, or the `after` they were
    /// queued with), each once with its latest due instant `<= upto`, in list order.
    pub fn take_due(
        &mut self,
        upto: DateTime<Utc>,
    ) -> impl Iterator<Item = (&Target, DateTime<Utc>)> + '_ {
        let upto_ms = upto.timestamp_millis();
        let mut due = std::mem::take(&mut self.taken);
        due.clear();
        while let Some(&Reverse((at, i, generation))) = self.heap.peek() {
            if at > upto_ms {
                break;
            }
            self.heap.pop();
            let Some(slot) = self.slots[i]
                .as_mut()
                .filter(|s| s.generation == generation)
            else {
                continue;
            };
            let last = last_due_ms(upto_ms, slot.every, slot.phase);
            slot.due = last.saturating_add(slot.every);
            self.heap.push(Reverse((slot.due, i, generation)));
            due.push((
                slot.order,
                i,
                DateTime::from_timestamp_millis(last).unwrap_or(upto),
            ));
        }
        due.sort_unstable_by_key(|&(order, _, _)| order);
        self.taken = due;
        let slots = &self.slots;
        self.taken
            .iter()
            .filter_map(move |&(_, i, at)| Some((&slots[i].as_ref()?.target, at)))
    }

    fn live(&self, i: usize, generation: u64) -> bool {
        self.slots
            .get(i)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.generation == generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{due_evaluations, due_in, next_due};
    use crate::target::{CheckSpec, TargetSpec};

    fn target(id: &str, spec: serde_json::Value) -> Target {
        let mut spec = spec;
        spec["id"] = id.into();
        Target {
            tenant: TenantId::default_tenant(),
            spec: serde_json::from_value::<TargetSpec>(spec).unwrap(),
            version: 1,
            created_at: DateTime::default(),
            updated_at: DateTime::default(),
        }
    }

    fn http(id: &str, interval_s: u64) -> Target {
        target(
            id,
            serde_json::json!({"http": {"url": "http://127.0.0.1/"}, "interval": interval_s, "timeout": "5s"}),
        )
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_123 + ms).unwrap()
    }

    type Due = Vec<(Target, DateTime<Utc>)>;

    fn owned(due: Vec<(&Target, DateTime<Utc>)>) -> Due {
        due.into_iter().map(|(t, d)| (t.clone(), d)).collect()
    }

    /// xorshift: a fixed, varied sequence of wake-ups and edits.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    const INTERVALS: [u64; 8] = [10, 11, 15, 30, 60, 300, 3_600, 86_400];

    /// The queue yields exactly what recomputing `due_in` over every target on every wake-up
    /// yields (targets, instants, order) and the same next wake-up, through short and long
    /// gaps, wake-ups exactly at a due instant, and edits: re-timed, disabled, enabled,
    /// deleted, added, changed in place and reordered targets, heartbeats, two tenants.
    #[test]
    fn yields_what_due_in_yields_through_wake_ups_and_edits() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let other = TenantId::parse("other").unwrap();
        let mut targets: Vec<Target> = (0..300)
            .map(|i| {
                let id = format!("t{i}");
                let mut t = if i % 17 == 0 {
                    target(&id, serde_json::json!({"heartbeat": {"period": "1h"}}))
                } else {
                    http(&id, INTERVALS[i % INTERVALS.len()])
                };
                t.spec.enabled = i % 13 != 0;
                if i % 5 == 0 {
                    t.tenant = other.clone();
                }
                t
            })
            .collect();
        let mut queue = DueQueue::new();
        let mut after = at(0);
        queue.replace(targets.clone(), after);
        let mut probes = 0;
        for step in 0..4_000 {
            let want_next = targets
                .iter()
                .filter(|t| is_polled(t))
                .map(|t| next_due(t, after))
                .min();
            assert_eq!(queue.next_due(), want_next, "step {step}");
            let gap_ms = match rng.below(10) {
                0 => 1 + rng.below(900_000) as i64,
                1 | 2 => want_next.map_or(1, |n| (n - after).num_milliseconds()),
                _ => 1 + rng.below(1_500) as i64,
            };
            let upto = after + chrono::Duration::milliseconds(gap_ms);
            let want = owned(due_in(&targets, after, upto));
            let got = owned(queue.take_due(upto).collect());
            assert_eq!(got, want, "step {step}");
            probes += got.len();
            after = upto;
            if step % 40 == 20 {
                for _ in 0..5 {
                    let i = rng.below(targets.len() as u64) as usize;
                    match rng.below(6) {
                        0 => {
                            let every = INTERVALS[rng.below(8) as usize];
                            targets[i].spec.interval =
                                serde_json::from_value(serde_json::json!(every)).unwrap();
                        }
                        1 => targets[i].spec.enabled = !targets[i].spec.enabled,
                        2 => {
                            targets.remove(i);
                        }
                        3 => targets.push(http(&format!("n{step}-{i}"), 10)),
                        4 => {
                            if let CheckSpec::Http(h) = &mut targets[i].spec.check {
                                h.url = format!("http://127.0.0.1/{step}").parse().unwrap();
                            }
                            targets[i].version += 1;
                        }
                        _ => {
                            let j = rng.below(targets.len() as u64) as usize;
                            targets.swap(i, j);
                        }
                    }
                }
                queue.replace(targets.clone(), after);
            }
        }
        assert!(probes > 10_000, "the run probes a lot: {probes}");
        assert_eq!(queue.len(), targets.iter().filter(|t| is_polled(t)).count());
    }

    /// A wake-up computes due instants only for the targets due then: the same due targets
    /// among 10 or among 10,000 targets cost the same number of evaluations.
    #[test]
    fn work_per_wake_up_does_not_grow_with_targets_not_due() {
        let run = |idle: usize| {
            let mut targets: Vec<Target> = (0..10).map(|i| http(&format!("busy{i}"), 10)).collect();
            // Daily targets not due in the two minutes measured.
            let window = (at(0), at(120_000));
            targets.extend(
                (0..)
                    .map(|i| http(&format!("idle{i}"), 86_400))
                    .filter(|t| next_due(t, window.0) > window.1)
                    .take(idle),
            );
            let mut queue = DueQueue::new();
            queue.replace(targets, window.0);
            let before = due_evaluations();
            let mut per_wake_up = Vec::new();
            let mut now = window.0;
            while let Some(next) = queue.next_due().filter(|n| *n <= window.1) {
                now = now.max(next);
                let counted = due_evaluations();
                let due = queue.take_due(now).count();
                per_wake_up.push((due, due_evaluations() - counted));
            }
            (per_wake_up, due_evaluations() - before)
        };
        let (few, few_total) = run(0);
        let (many, many_total) = run(9_990);
        let probed: usize = few.iter().map(|&(due, _)| due).sum();
        assert_eq!(probed, 120, "ten 10 s targets over two minutes: {few:?}");
        assert!(few.iter().all(|&(due, evaluated)| evaluated == due as u64));
        assert_eq!(few, many);
        assert_eq!(few_total, many_total);
    }
}
