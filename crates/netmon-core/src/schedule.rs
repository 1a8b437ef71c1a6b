//! When each target is due. Every target gets a stable phase inside its interval (a hash of its
//! tenant and id), so a thousand one-minute targets are spread over the minute instead of all
//! firing at second 0, and the same target fires at the same second on every tick and every
//! scheduler instance.

use crate::jobs::ProbeJob;
use crate::target::{CheckSpec, Target};
use chrono::{DateTime, Utc};

mod queue;
pub use queue::DueQueue;

#[cfg(any(test, feature = "count-due"))]
thread_local! {
    static DUE_EVALUATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many due instants this thread has computed: tests count a scheduler's work with it.
#[cfg(any(test, feature = "count-due"))]
pub fn due_evaluations() -> u64 {
    DUE_EVALUATIONS.with(std::cell::Cell::get)
}

/// FNV-1a: tiny, stable across versions and platforms (unlike `DefaultHasher`).
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Phases are whole multiples of this. Targets whose phases share a step are due at the same
/// instant and leave in one job: with millisecond phases, a process running 1,000 targets woke
/// for each and paid every per-job cost (bus message, maintenance read, history transaction)
/// per probe. A step of 250 ms still spreads a 10 s interval over 40 instants.
const PHASE_STEP_MS: i64 = 250;

/// The splitmix64 finalizer: spreads a hash's entropy over every bit, so a modulus of it is even.
fn spread(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn phase_ms(target: &Target, interval_ms: i64) -> i64 {
    // FNV's low bits barely mix for ids that differ in one character (t1, t2, ...), which the
    // old millisecond modulus hid; the splitmix64 finalizer spreads them.
    let h = spread(stable_hash(&[target.tenant.as_str(), target.id().as_str()]));
    let steps = u64::try_from((interval_ms / PHASE_STEP_MS).max(1)).unwrap_or(1);
    i64::try_from(h % steps).map_or(0, |step| step * PHASE_STEP_MS)
}

fn interval_ms(target: &Target) -> i64 {
    i64::try_from(target.spec.interval.as_millis_u64())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The latest millisecond `<= t` on which a target of this interval and phase is due.
fn last_due_ms(t: i64, every: i64, phase: i64) -> i64 {
    #[cfg(any(test, feature = "count-due"))]
    DUE_EVALUATIONS.with(|n| n.set(n.get() + 1));
    t - (t - phase).rem_euclid(every)
}

/// The latest instant `<= at` on which the target is due.
pub(crate) fn last_due(target: &Target, at: DateTime<Utc>) -> DateTime<Utc> {
    let every = interval_ms(target);
    let phase = phase_ms(target, every);
    let due = last_due_ms(at.timestamp_millis(), every, phase);
    DateTime::from_timestamp_millis(due).unwrap_or(at)
}

/// The first instant `> at` on which the target is due.
pub fn next_due(target: &Target, at: DateTime<Utc>) -> DateTime<Utc> {
    last_due(target, at) + chrono::Duration::milliseconds(interval_ms(target))
}

/// How late after its slot a scheduled probe may still start and count for that slot: half
/// the interval, at least 5 s. Later, it would observe the target at a time that belongs to the
/// next slot.
pub fn late_limit(spec: &crate::target::TargetSpec) -> chrono::Duration {
    (spec.interval.as_chrono() / 2).max(chrono::Duration::seconds(5))
}

/// The start of the UTC minute holding `t`.
pub fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let ms = t.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(60_000)).unwrap_or(t)
}

/// Whether the target is probed by the scheduler (heartbeats are pushed, not polled).
pub fn is_polled(target: &Target) -> bool {
    target.spec.enabled && !matches!(target.spec.check, CheckSpec::Heartbeat(_))
}

/// Targets due in `(after, upto]`, each with the instant it was due. A target due several
/// times in the window (the scheduler was late) is probed once, for the latest instant.
pub fn due_in<'a>(
    targets: impl IntoIterator<Item = &'a Target>,
    after: DateTime<Utc>,
    upto: DateTime<Utc>,
) -> Vec<(&'a Target, DateTime<Utc>)> {
    targets
        .into_iter()
        .filter(|t| is_polled(t))
        .filter_map(|t| {
            let due = last_due(t, upto);
            (due > after).then_some((t, due))
        })
        .collect()
}

/// Every instant in `(after, upto]` on which each target is due: a planner that looks a whole
/// minute ahead (the cloud tick) must probe a 10 s target six times, not once.
pub fn due_each_in<'a>(
    targets: impl IntoIterator<Item = &'a Target>,
    after: DateTime<Utc>,
    upto: DateTime<Utc>,
) -> Vec<(&'a Target, DateTime<Utc>)> {
    let mut due = Vec::new();
    for t in targets.into_iter().filter(|t| is_polled(t)) {
        let every = chrono::Duration::milliseconds(interval_ms(t));
        let mut at = last_due(t, upto);
        while at > after {
            due.push((t, at));
            at -= every;
        }
    }
    due
}

/// `at` floored to a multiple of `slot` (zero keeps it): the instant a job of probes due at
/// `at` is scheduled for.
pub fn floor_to_slot(at: DateTime<Utc>, slot: std::time::Duration) -> DateTime<Utc> {
    let slot_ms = i64::try_from(slot.as_millis()).unwrap_or(i64::MAX);
    if slot_ms <= 0 {
        return at;
    }
    let ms = at.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(slot_ms)).unwrap_or(at)
}

/// A minute: the longest period [`group_slot`] aligns.
const MINUTE_MS: i64 = 60_000;

/// Groups of fewer targets than this go out on [`SMALL_GROUP_STEP_MS`] steps: their jobs then
/// share instants, so the cloud's transport packs several into one message (and the prober's
/// SNS publish into one request), where spread over 250 ms steps almost every small tenant's
/// job would travel alone.
pub const SMALL_GROUP_TARGETS: usize = 50;
const SMALL_GROUP_STEP_MS: i64 = 10_000;

/// Where in the minute a target group of `targets` targets sends its probes in the cloud: a
/// stable hash of the tenant and the group, so a tenant's groups, and tenants, are spread over
/// the minute; on the phase step, or on [`SMALL_GROUP_STEP_MS`] for small groups.
pub fn group_offset_ms(tenant: &str, group: crate::group::Group, targets: usize) -> i64 {
    let step = if targets < SMALL_GROUP_TARGETS {
        SMALL_GROUP_STEP_MS
    } else {
        PHASE_STEP_MS
    };
    let h = spread(stable_hash(&[
        tenant,
        &group.level.to_string(),
        &group.index.to_string(),
    ]));
    let steps = (MINUTE_MS / step) as u64;
    i64::try_from(h % steps).map_or(0, |n| n * step)
}

/// The instant a cloud job sends the probe of a target due at `due`, when the target's group
/// shares one instant per period, `offset_ms` ([`group_offset_ms`]) into it: the period is a
/// minute for intervals of whole minutes, the interval itself for intervals that divide a
/// minute (10, 15, 20, 30 s), so every probe of the group due in one period leaves in one job
/// and consecutive probes of a target stay exactly one interval apart. The instant stays in
/// the period (hence the minute) holding `due`, so one tick plans all of it; it may be up to a
/// period earlier or later than the target's own phase. `None` for other intervals (90 s,
/// 45 s…), which keep their own phase.
///
/// Per-target phases made a tenant of three targets three jobs a minute, and every job pays
/// an SQS message, an SNS publish, state and maintenance reads and a history write.
pub fn group_slot(
    due: DateTime<Utc>,
    interval: std::time::Duration,
    offset_ms: i64,
) -> Option<DateTime<Utc>> {
    let every = i64::try_from(interval.as_millis()).ok()?;
    let period = if every > 0 && every % MINUTE_MS == 0 {
        MINUTE_MS
    } else if every > 0 && MINUTE_MS % every == 0 && every % PHASE_STEP_MS == 0 {
        every
    } else {
        return None;
    };
    let ms = due.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(period) + offset_ms.rem_euclid(period))
}

/// Groups due targets into jobs of at most `shard_size`, one tenant per job. Due instants are
/// floored to `slot` (zero keeps exact instants): every target has its own phase, so without
/// slots a minute of 1,000 targets would become 1,000 one-target jobs; with 10 s slots it is
/// at most six jobs per 50 targets, while the load is still spread over the minute.
pub fn into_jobs<'a>(
    due: impl IntoIterator<Item = (&'a Target, DateTime<Utc>)>,
    shard_size: usize,
    slot: std::time::Duration,
) -> Vec<ProbeJob> {
    // Keyed by borrowed tenant ids: an owned key cost a copy per probe.
    let mut groups: std::collections::BTreeMap<(&str, DateTime<Utc>), Vec<&Target>> =
        std::collections::BTreeMap::new();
    for (t, at) in due {
        let at = floor_to_slot(at, slot);
        groups.entry((t.tenant.as_str(), at)).or_default().push(t);
    }
    let mut jobs = Vec::new();
    for ((_, at), targets) in groups {
        for chunk in targets.chunks(shard_size.max(1)) {
            jobs.push(ProbeJob::scheduled(
                chunk[0].tenant.clone(),
                at,
                chunk.iter().map(|t| t.spec.clone()).collect(),
            ));
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TenantId;
    use crate::target::TargetSpec;

    fn target(id: &str, interval_s: u64) -> Target {
        let spec: TargetSpec = serde_json::from_value(serde_json::json!({
            "id": id, "http": {"url": "http://127.0.0.1/"}, "interval": interval_s, "timeout": "5s"
        }))
        .unwrap();
        Target {
            tenant: TenantId::default_tenant(),
            spec,
            version: 1,
            created_at: DateTime::default(),
            updated_at: DateTime::default(),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn each_target_fires_once_per_interval() {
        let t = target("web", 60);
        let mut fired = Vec::new();
        for s in 0..600 {
            if !due_in([&t], at(s), at(s + 1)).is_empty() {
                fired.push(s + 1);
            }
        }
        assert_eq!(fired.len(), 10);
        assert!(fired.windows(2).all(|w| w[1] - w[0] == 60), "{fired:?}");
    }

    #[test]
    fn sub_minute_intervals_fire_within_a_minute_tick() {
        let t = target("fast", 15);
        let mut count = 0;
        for s in (0..60).step_by(1) {
            count += due_in([&t], at(s), at(s + 1)).len();
        }
        assert_eq!(count, 4);
        // A one-minute window sees one due instant (the latest), not four.
        assert_eq!(due_in([&t], at(0), at(60)).len(), 1);
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let targets: Vec<Target> = (0..1000).map(|i| target(&format!("t{i}"), 60)).collect();
        let mut per_second = [0u32; 60];
        for t in &targets {
            let phase = last_due(t, at(0)).timestamp().rem_euclid(60) as usize;
            per_second[phase] += 1;
        }
        let max = per_second.iter().max().copied().unwrap_or(0);
        // Uniform would be ~17 a second; all at once would be 1000.
        assert!(max < 40, "busiest second has {max}: {per_second:?}");
    }

    /// Phases fall on 250 ms steps, so targets share due instants (and jobs) while the steps
    /// themselves are used evenly.
    #[test]
    fn phases_share_steps_so_due_targets_share_jobs() {
        let targets: Vec<Target> = (0..1000).map(|i| target(&format!("t{i}"), 10)).collect();
        let mut per_step = [0u32; 40];
        for t in &targets {
            let ms = last_due(t, at(0)).timestamp_millis().rem_euclid(10_000);
            assert_eq!(ms % PHASE_STEP_MS, 0, "{ms}");
            per_step[(ms / PHASE_STEP_MS) as usize] += 1;
        }
        // Uniform is 25 a step; every step used, none holding a crowd.
        let (min, max) = (per_step.iter().min(), per_step.iter().max());
        assert!(min >= Some(&10) && max <= Some(&45), "{per_step:?}");
        let ms = chrono::Duration::milliseconds(1);
        let jobs = into_jobs(
            due_in(&targets, at(0) - ms, at(10) - ms),
            50,
            std::time::Duration::ZERO,
        );
        assert!(jobs.len() <= 40, "{} jobs for 1,000 targets", jobs.len());
    }

    #[test]
    fn a_minute_ahead_plans_every_instant_of_short_intervals() {
        let ms = chrono::Duration::milliseconds(1);
        let (fast, slow, daily) = (
            target("fast", 10),
            target("slow", 60),
            target("daily", 86_400),
        );
        let minute = |t: &Target, m: i64| {
            due_each_in([t], at(60 * m) - ms, at(60 * (m + 1)) - ms)
                .into_iter()
                .map(|(_, d)| d)
                .collect::<Vec<_>>()
        };
        let mut seen = Vec::new();
        for m in 0..3 {
            let got = minute(&fast, m);
            assert_eq!(got.len(), 6, "minute {m}: {got:?}");
            assert!(
                got.iter()
                    .all(|d| *d >= at(60 * m) && *d < at(60 * (m + 1)))
            );
            seen.extend(got);
        }
        seen.sort();
        assert!(
            seen.windows(2)
                .all(|w| w[1] - w[0] == chrono::Duration::seconds(10))
        );
        assert_eq!(minute(&slow, 0).len(), 1);
        let daily_hits: usize = (0..1440).map(|m| minute(&daily, m).len()).sum();
        assert_eq!(daily_hits, 1, "once a day over a day of minutes");
    }

    #[test]
    fn late_scheduler_probes_once() {
        let t = target("web", 10);
        assert_eq!(due_in([&t], at(0), at(300)).len(), 1);
    }

    #[test]
    fn jobs_are_sharded_by_tenant_and_instant() {
        let mut targets: Vec<Target> = (0..120).map(|i| target(&format!("t{i}"), 60)).collect();
        for t in targets.iter_mut().take(10) {
            t.tenant = TenantId::parse("other").unwrap();
        }
        let due: Vec<_> = targets.iter().map(|t| (t, at(0))).collect();
        let jobs = into_jobs(due, 50, std::time::Duration::ZERO);
        // default: 110 → 50+50+10; other: 10.
        assert_eq!(jobs.len(), 4);
        assert!(jobs.iter().all(|j| j.targets.len() <= 50));
        assert_eq!(jobs.iter().map(|j| j.targets.len()).sum::<usize>(), 120);
    }

    #[test]
    fn slots_bound_the_number_of_jobs() {
        let targets: Vec<Target> = (0..100).map(|i| target(&format!("t{i}"), 60)).collect();
        let ms = chrono::Duration::milliseconds(1);
        let due = due_in(&targets, at(0) - ms, at(60) - ms);
        assert_eq!(due.len(), 100);
        let exact = into_jobs(due.clone(), 50, std::time::Duration::ZERO);
        let slotted = into_jobs(due, 50, std::time::Duration::from_secs(10));
        assert!(exact.len() > 50, "phases are spread: {}", exact.len());
        assert!(slotted.len() <= 6, "{} jobs", slotted.len());
        assert!(
            slotted
                .iter()
                .all(|j| j.scheduled_for.timestamp() % 10 == 0)
        );
        assert_eq!(slotted.iter().map(|j| j.targets.len()).sum::<usize>(), 100);
    }

    /// Group slots keep each target exactly one interval apart from minute to minute, stay in
    /// the minute planned, and put a group's targets of every aligned interval in one instant
    /// per minute.
    #[test]
    fn group_slots_keep_intervals_and_share_one_instant() {
        use crate::group::Group;
        let ms = chrono::Duration::milliseconds(1);
        let group = Group { level: 0, index: 0 };
        let offset = group_offset_ms("acme", group, SMALL_GROUP_TARGETS);
        assert_eq!(offset % PHASE_STEP_MS, 0);
        assert!((0..MINUTE_MS).contains(&offset));
        // Small groups share ten-second instants.
        let small: std::collections::BTreeSet<i64> = (0..200)
            .map(|i| group_offset_ms(&format!("tenant-{i}"), group, 3))
            .collect();
        assert_eq!(small.len(), 6, "{small:?}");
        assert!(small.iter().all(|o| o % SMALL_GROUP_STEP_MS == 0));
        let mut shared: Option<std::collections::BTreeSet<DateTime<Utc>>> = None;
        for (i, every) in [10u64, 15, 20, 30, 60, 300].into_iter().enumerate() {
            let t = target(&format!("t{i}"), every);
            let mut slots = Vec::new();
            for m in 0..10 {
                for (_, d) in due_each_in([&t], at(60 * m) - ms, at(60 * (m + 1)) - ms) {
                    let slot = group_slot(d, t.spec.interval.as_duration(), offset)
                        .expect("aligned interval");
                    assert_eq!(
                        floor_minute(slot),
                        floor_minute(d),
                        "{every} s: {d} -> {slot}"
                    );
                    slots.push(slot);
                }
            }
            slots.sort();
            assert!(
                slots
                    .windows(2)
                    .all(|w| w[1] - w[0] == chrono::Duration::seconds(every as i64)),
                "{every} s: {slots:?}"
            );
            // Each minute's instant of the group is among every aligned target's slots.
            let instants: std::collections::BTreeSet<_> = slots
                .iter()
                .copied()
                .filter(|s| s.timestamp_millis().rem_euclid(MINUTE_MS) == offset)
                .collect();
            if every <= 60 {
                assert_eq!(instants.len(), 10, "{every} s");
                shared = Some(match shared {
                    None => instants,
                    Some(s) => s.intersection(&instants).copied().collect(),
                });
            }
        }
        assert_eq!(shared.map(|s| s.len()), Some(10));
        let odd = target("odd", 90);
        assert_eq!(
            group_slot(at(0), odd.spec.interval.as_duration(), offset),
            None
        );
        let odd = target("odd", 45);
        assert_eq!(
            group_slot(at(0), odd.spec.interval.as_duration(), offset),
            None
        );
    }

    #[test]
    fn disabled_and_heartbeat_targets_are_not_polled() {
        let mut t = target("off", 60);
        t.spec.enabled = false;
        assert!(due_in([&t], at(0), at(120)).is_empty());
    }
}
