//! Scheduler: turns "time passed" into probe jobs, and overdue heartbeats into failed results.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::group::{self, Group};
use netmon_core::jobs::ProbeJob;
use netmon_core::observation::{ErrorKind, PhaseTimings, ProbeError};
use netmon_core::ports::{
    Clock, EventBus, HeartbeatStore, JobQueue, PingKind, PingRecord, TargetStore,
};
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::target::{CheckSpec, Target, TargetSpec};
use netmon_core::{TargetId, TenantId};

use crate::error::HandleError;
use futures::{StreamExt, TryStreamExt};
use netmon_core::schedule;
use tracing::warn;

/// Heartbeat results carry this location: they come from the job, not from a prober.
pub(crate) const PUSH_LOCATION: &str = "push";

/// The latest a tick still plans a probe after its due instant. Two probes of one slot (a tick
/// retried after sending part of its jobs) then observe the target at most this far apart, so
/// a blip cannot count in more slots than its length allows.
const PLAN_LATE: chrono::Duration = chrono::Duration::seconds(10);

/// The result a heartbeat ping stands for (`None` for a start ping), with the ping's instant
/// as its slot: the API publishes it when the ping arrives and ticks republish it.
pub(crate) fn ping_result(
    tenant: &TenantId,
    target: &TargetId,
    at: DateTime<Utc>,
    kind: PingKind,
) -> Option<ProbeResult> {
    let outcome = match kind {
        PingKind::Start => return None,
        PingKind::Success => Outcome::Up,
        PingKind::Fail => Outcome::Down,
    };
    Some(ProbeResult {
        tenant: tenant.clone(),
        target: target.clone(),
        location: PUSH_LOCATION.to_owned(),
        slot: Some(at),
        started_at: at,
        duration_ms: 0.0,
        timings: PhaseTimings::default(),
        outcome,
        status_code: None,
        ip: None,
        certificate_expires_at: None,
        conditions: Vec::new(),
        error: (kind == PingKind::Fail)
            .then(|| ProbeError::new(ErrorKind::Reported, "the job reported failure")),
    })
}

pub struct Scheduler {
    jobs: Arc<dyn JobQueue>,
    heartbeats: Arc<dyn HeartbeatStore>,
    bus: Arc<dyn EventBus>,
    shard_size: usize,
    slot: std::time::Duration,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub jobs: usize,
    pub probes: usize,
    pub missed_heartbeats: usize,
}

impl Scheduler {
    pub fn new(
        jobs: Arc<dyn JobQueue>,
        heartbeats: Arc<dyn HeartbeatStore>,
        bus: Arc<dyn EventBus>,
        shard_size: usize,
    ) -> Self {
        Self {
            jobs,
            heartbeats,
            bus,
            shard_size,
            slot: std::time::Duration::ZERO,
        }
    }

    /// Floors due instants to `slot` so one tick yields few jobs (see `schedule::into_jobs`).
    /// The minute plans of the cloud use it only for intervals [`schedule::group_slot`] does
    /// not align (90 s, 45 s…).
    pub fn with_slot(mut self, slot: std::time::Duration) -> Self {
        self.slot = slot;
        self
    }

    /// The cloud tick: one invocation per minute plans the minute that starts at `minute`
    /// (floored), enqueueing jobs delayed to their slot, and reports heartbeats missed during
    /// the minute before it. Consecutive minutes cover time exactly once.
    pub async fn plan_minute(
        &self,
        targets: &[Target],
        minute: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        self.plan_minute_at(targets, minute, schedule::floor_minute(minute))
            .await
    }

    /// [`Self::plan_minute`] run at `now`: a tick that runs late (a late scheduled event, or
    /// Lambda's retry of a failed tick a minute or two later) leaves out the probes already
    /// too late for their slot ([`schedule::late_limit`], at most [`PLAN_LATE`]). Sent now, they would observe the
    /// target at a later time yet count for their slot, so a blip shorter than the threshold
    /// could count in several slots (netmon-sim found such false incidents). A skipped slot
    /// delays, never invents: the alerter counts only adjacent slots.
    pub async fn plan_minute_at(
        &self,
        targets: &[Target],
        minute: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        self.plan(targets, minute, minute, now).await
    }

    /// The cloud tick for `minute` run at `now`: plans the minute after it, so a scheduled
    /// event up to a minute late still plans every probe on time (netmon-sim seed 6521: ticks
    /// 11 to 30 s late left out every other slot of a 5-minute target, and its 43-minute outage
    /// never had two adjacent failures), and reports heartbeats missed during the minute
    /// before `minute`, as [`Self::plan_minute_at`]. Consecutive minutes still cover time
    /// exactly once.
    pub async fn plan_ahead_at(
        &self,
        targets: &[Target],
        minute: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        let next = schedule::floor_minute(minute) + chrono::Duration::seconds(60);
        self.plan(targets, next, minute, now).await
    }

    /// [`Self::plan_ahead_at`] over every target of `store`, read as a stream: per probe due
    /// the plan keeps only its tenant, slot, id and encoded spec (~0.5 KB, against ~1.4 KB for
    /// a decoded target, which the jobs would then hold a second time), and jobs are built and
    /// sent [`SEND_JOBS`] at a time, so the cloud tick plans 100,000 targets within 128 MB.
    /// Lateness is judged by `clock` once every target is read (the read takes seconds at
    /// that size). Returns how many targets were read, and the report.
    pub async fn plan_ahead_from(
        &self,
        store: &dyn TargetStore,
        minute: DateTime<Utc>,
        clock: &dyn Clock,
    ) -> Result<(usize, TickReport), HandleError> {
        let next = schedule::floor_minute(minute) + chrono::Duration::seconds(60);
        let mut plan = MinutePlan::new(next);
        store.visit_targets(&mut |t| plan.add(&t)).await?;
        let targets = plan.targets;
        Ok((targets, self.send(plan, minute, clock.now()).await?))
    }

    /// Probes due in the minute starting at `probe_minute` (floored), less those too late at
    /// `now`; heartbeats missed in the minute before `check_minute`.
    async fn plan(
        &self,
        targets: &[Target],
        probe_minute: DateTime<Utc>,
        check_minute: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        let mut plan = MinutePlan::new(probe_minute);
        for t in targets {
            plan.add(t);
        }
        self.send(plan, check_minute, now).await
    }

    /// Sends the plan's jobs (at most `shard_size` targets, one tenant, slot and target group
    /// each, in slot, tenant, group and id order), less the probes already too late at `now`, and reports
    /// heartbeats missed in the minute before `check_minute`.
    async fn send(
        &self,
        plan: MinutePlan,
        check_minute: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        let MinutePlan {
            mut due,
            heartbeats,
            tenants,
            mut finest_groups,
            ..
        } = plan;
        // Each tenant's probes are split by stable target group (netmon_core::group), so
        // history blocks hold one group's targets and a target's history is read without its
        // tenant's; a group's probes of one period leave together ([`schedule::group_slot`]).
        let levels: Vec<u8> = finest_groups
            .iter()
            .map(|finest| group::level_for(finest.len()))
            .collect();
        for finest in &mut finest_groups {
            finest.sort_unstable();
        }
        for probe in &mut due {
            let level = levels.get(probe.tenant as usize).copied().unwrap_or(0);
            let group = Group::of(&probe.id, level);
            probe.group = group.index;
            probe.group_size = finest_groups
                .get(probe.tenant as usize)
                .map_or(0, |finest| targets_in(finest, group));
            let offset = tenants.get(probe.tenant as usize).map_or(0, |t| {
                schedule::group_offset_ms(t.as_str(), group, probe.group_size)
            });
            probe.slot = schedule::group_slot(probe.due, probe.interval, offset)
                .unwrap_or_else(|| schedule::floor_to_slot(probe.due, self.slot));
        }
        // Lateness counts from the instant the probe is sent for.
        due.retain(|probe| now <= probe.slot + probe.late);
        let mut by_name: Vec<usize> = (0..tenants.len()).collect();
        by_name.sort_unstable_by(|a, b| tenants[*a].cmp(&tenants[*b]));
        let mut rank = vec![0; tenants.len()];
        for (r, t) in by_name.into_iter().enumerate() {
            rank[t] = r;
        }
        // Slot first: each enqueue of SEND_JOBS jobs then holds mostly one slot's jobs, which a
        // queue may pack into shared messages (`SqsJobQueue` packs jobs of equal delay). In a
        // group, finest group first: a group cut into several jobs gives each a contiguous span
        // of check states to read.
        due.sort_unstable_by(|a, b| {
            (a.slot, rank[a.tenant as usize], a.group, a.finest, &a.id).cmp(&(
                b.slot,
                rank[b.tenant as usize],
                b.group,
                b.finest,
                &b.id,
            ))
        });
        // Each job's range of `due`; specs are decoded only when its batch is sent.
        let mut ranges = Vec::new();
        let mut start = 0;
        for group in due.chunk_by(|a, b| (a.tenant, a.slot, a.group) == (b.tenant, b.slot, b.group))
        {
            for chunk in group.chunks(self.shard_size.max(1)) {
                ranges.push(start..start + chunk.len());
                start += chunk.len();
            }
        }
        let (due, tenants, levels) = (&due, &tenants, &levels);
        let sent: Vec<(usize, usize)> = futures::stream::iter(ranges.chunks(SEND_JOBS))
            .map(|batch| async move {
                let jobs: Vec<ProbeJob> = batch
                    .iter()
                    .filter_map(|range| {
                        let chunk = &due[range.clone()];
                        let tenant = &tenants[chunk[0].tenant as usize];
                        let level = levels.get(chunk[0].tenant as usize).copied().unwrap_or(0);
                        let specs: Vec<TargetSpec> =
                            chunk.iter().filter_map(|p| p.spec(tenant)).collect();
                        (!specs.is_empty()).then(|| {
                            ProbeJob::scheduled(tenant.clone(), chunk[0].slot, specs)
                                .in_group(level, chunk[0].group_size)
                        })
                    })
                    .collect();
                let counts = (jobs.len(), jobs.iter().map(|j| j.targets.len()).sum());
                if !jobs.is_empty() {
                    self.jobs.enqueue(jobs).await?;
                }
                Ok::<_, HandleError>(counts)
            })
            .buffer_unordered(SEND_BATCHES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut report = TickReport {
            jobs: sent.iter().map(|(jobs, _)| jobs).sum(),
            probes: sent.iter().map(|(_, probes)| probes).sum(),
            missed_heartbeats: 0,
        };
        let upto = schedule::floor_minute(check_minute) - chrono::Duration::milliseconds(1);
        report.missed_heartbeats = self
            .check_after_send(
                report.jobs > 0,
                &heartbeats,
                upto - chrono::Duration::seconds(60),
                upto,
            )
            .await?;
        Ok(report)
    }

    pub fn shard_size(&self) -> usize {
        self.shard_size
    }

    /// Everything due in `(after, upto]`.
    pub async fn tick(
        &self,
        targets: &[Target],
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        let due = schedule::due_in(targets, after, upto);
        self.enqueue_due(due, targets, after, upto).await
    }

    /// Enqueues `due` (what is due in `(after, upto]`, found by the caller, e.g. from a
    /// `schedule::DueQueue`) and reports heartbeats among `targets` missed in that window.
    pub async fn enqueue_due<'a>(
        &self,
        due: impl IntoIterator<Item = (&'a Target, DateTime<Utc>)>,
        targets: &[Target],
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        let jobs = schedule::into_jobs(due, self.shard_size, self.slot);
        self.enqueue_and_check(jobs, targets, after, upto).await
    }

    /// Enqueues `jobs` and reports heartbeats whose deadline fell in `(after, upto]`.
    pub async fn enqueue_and_check(
        &self,
        jobs: Vec<netmon_core::jobs::ProbeJob>,
        targets: &[Target],
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
    ) -> Result<TickReport, HandleError> {
        let mut report = TickReport {
            jobs: jobs.len(),
            probes: jobs.iter().map(|j| j.targets.len()).sum(),
            missed_heartbeats: 0,
        };
        let sent = !jobs.is_empty();
        if sent {
            self.jobs.enqueue(jobs).await?;
        }
        report.missed_heartbeats = self.check_after_send(sent, targets, after, upto).await?;
        Ok(report)
    }

    /// Reports heartbeats among `targets` missed in `(after, upto]`, once jobs were `sent`.
    async fn check_after_send(
        &self,
        sent: bool,
        targets: &[Target],
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
    ) -> Result<usize, HandleError> {
        match self.check_heartbeats(targets, after, upto).await {
            Ok(missed) => Ok(missed),
            // Failing the tick now would have its retry send the same jobs again, and a second
            // probe of a slot may see something else. Misses are derived again by the next
            // tick anyway.
            Err(e) if sent => {
                warn!(error = %e, "heartbeat check failed; the next tick checks again");
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// The next instant a heartbeat becomes overdue (or overdue for one more period) after
    /// `now`, from the stored pings: one process sleeps until then, so a miss is reported at its
    /// deadline rather than at the next minute. A ping arriving meanwhile only moves deadlines
    /// later, so waking at a stale one costs a tick that finds nothing.
    pub async fn next_heartbeat_deadline(
        &self,
        targets: &[Target],
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, HandleError> {
        let beats: Vec<&Target> = targets
            .iter()
            .filter(|t| t.spec.enabled && matches!(t.spec.check, CheckSpec::Heartbeat(_)))
            .collect();
        if beats.is_empty() {
            return Ok(None);
        }
        let last: HashMap<(TenantId, TargetId), DateTime<Utc>> = self
            .heartbeats
            .last_pings()
            .await?
            .into_iter()
            .filter(|p| p.kind != PingKind::Start)
            .map(|p| ((p.tenant, p.target), p.at))
            .collect();
        Ok(beats
            .into_iter()
            .filter_map(|t| {
                let last_ping = last.get(&(t.tenant.clone(), t.id().clone())).copied();
                next_miss_after(t, last_ping, now)
            })
            .min())
    }

    async fn check_heartbeats(
        &self,
        targets: &[Target],
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
    ) -> Result<usize, HandleError> {
        let beats: Vec<&Target> = targets
            .iter()
            .filter(|t| t.spec.enabled && matches!(t.spec.check, CheckSpec::Heartbeat(_)))
            .collect();
        if beats.is_empty() {
            return Ok(0);
        }
        let last: HashMap<(TenantId, TargetId), PingRecord> = self
            .heartbeats
            .last_pings()
            .await?
            .into_iter()
            .filter(|p| p.kind != PingKind::Start)
            .map(|p| ((p.tenant.clone(), p.target.clone()), p))
            .collect();
        // Every tick publishes each heartbeat's latest evidence: its miss while it is overdue,
        // else its latest ping. A recorded ping is thereby as good as published (its own
        // publish by the api may be lost, and ticks may fail for minutes), and a lost tick or
        // publish delays a transition instead of dropping it. Slots are deterministic, so the
        // alerter counts each once; a repeat costs it two reads, as a one-minute check does.
        // A wake-up inside a minute (one process) reports only what is new since `after`.
        let repeat = schedule::floor_minute(upto) > after;
        let mut by_tenant: BTreeMap<TenantId, Vec<ProbeResult>> = BTreeMap::new();
        for t in beats {
            let last_ping = last.get(&(t.tenant.clone(), t.id().clone()));
            let result = match missed_heartbeat(t, last_ping.map(|p| p.at), upto) {
                Some(miss) if repeat || miss.slot() > after => Some(miss),
                Some(_) => None,
                None => last_ping
                    .filter(|_| repeat)
                    .and_then(|p| ping_result(&p.tenant, t.id(), p.at, p.kind)),
            };
            if let Some(result) = result {
                by_tenant.entry(t.tenant.clone()).or_default().push(result);
            }
        }
        let count = by_tenant
            .values()
            .flatten()
            .filter(|r| {
                r.outcome == Outcome::Down
                    && r.error
                        .as_ref()
                        .is_some_and(|e| e.kind == ErrorKind::Missed)
            })
            .count();
        let envelopes: Vec<Envelope> = by_tenant
            .into_iter()
            .map(|(tenant, results)| {
                let job_id = format!("heartbeats:{tenant}:{}", upto.timestamp_millis());
                Envelope::with_id(
                    format!("probe:{job_id}"),
                    Event::ProbeCompleted(ProbeBatch {
                        job_id,
                        location: PUSH_LOCATION.to_owned(),
                        results,
                        group_level: None,
                        group_size: None,
                        targets: Vec::new(),
                    }),
                    tenant,
                    "scheduler",
                    upto,
                )
            })
            .collect();
        if !envelopes.is_empty() {
            self.bus.publish(envelopes).await?;
        }
        Ok(count)
    }
}

/// Jobs built and sent at a time by [`Scheduler::plan_ahead_from`], and how many such batches
/// are in flight: 2 × 50 jobs of 50 targets hold ~7 MB of decoded specs.
const SEND_JOBS: usize = 50;
const SEND_BATCHES_IN_FLIGHT: usize = 2;

/// A minute's probes, gathered one target at a time.
struct MinutePlan {
    /// Due instants are in `(from, from + 60 s]`.
    from: DateTime<Utc>,
    due: Vec<PlannedProbe>,
    /// The tenants of `due`, each once (a plan of 100,000 targets often has few tenants).
    tenants: Vec<TenantId>,
    tenant_index: HashMap<TenantId, u32>,
    /// The finest group ([`group::MAX_LEVEL`]) of every target of each tenant of
    /// [`MinutePlan::tenants`], due or not: how many there are sets the tenant's group level,
    /// and sorted, they count the targets of any group.
    finest_groups: Vec<Vec<u16>>,
    /// Enabled heartbeat targets, for the check of missed pings (few and small).
    heartbeats: Vec<Target>,
    /// Targets seen.
    targets: usize,
}

/// One probe of the plan: what its job needs, the spec kept encoded until the job is built.
struct PlannedProbe {
    /// In [`MinutePlan::tenants`].
    tenant: u32,
    /// The target's own due instant.
    due: DateTime<Utc>,
    interval: std::time::Duration,
    /// The job's `scheduled_for`: the group's instant for `due` (or `due` floored to the
    /// scheduler's slot), set once every target is counted.
    slot: DateTime<Utc>,
    /// How long after `slot` the probe may still be sent.
    late: chrono::Duration,
    /// The target's group index at its tenant's level, and how many of the tenant's targets
    /// are in it, set once every target is counted.
    group: u32,
    group_size: usize,
    /// The target's group at [`group::MAX_LEVEL`].
    finest: u16,
    id: TargetId,
    spec: Arc<str>,
}

impl PlannedProbe {
    fn spec(&self, tenant: &TenantId) -> Option<TargetSpec> {
        serde_json::from_str(&self.spec)
            .inspect_err(|e| {
                tracing::error!(%tenant, target = %self.id, error = %e,
                    "target left out of its job: its spec does not read back")
            })
            .ok()
    }
}

impl MinutePlan {
    fn new(probe_minute: DateTime<Utc>) -> Self {
        Self {
            from: schedule::floor_minute(probe_minute) - chrono::Duration::milliseconds(1),
            due: Vec::new(),
            tenants: Vec::new(),
            tenant_index: HashMap::new(),
            finest_groups: Vec::new(),
            heartbeats: Vec::new(),
            targets: 0,
        }
    }

    fn tenant(&mut self, tenant: &TenantId) -> u32 {
        if let Some(i) = self.tenant_index.get(tenant) {
            return *i;
        }
        let i = u32::try_from(self.tenants.len()).unwrap_or(u32::MAX);
        self.tenants.push(tenant.clone());
        self.finest_groups.push(Vec::new());
        self.tenant_index.insert(tenant.clone(), i);
        i
    }

    /// Every instant of the minute on which `target` is due (a 10 s target six times).
    fn add(&mut self, target: &Target) {
        self.targets += 1;
        let tenant = self.tenant(&target.tenant);
        let finest =
            u16::try_from(Group::of(target.id(), group::MAX_LEVEL).index).unwrap_or(u16::MAX);
        if let Some(groups) = self.finest_groups.get_mut(tenant as usize) {
            groups.push(finest);
        }
        if target.spec.enabled && matches!(target.spec.check, CheckSpec::Heartbeat(_)) {
            self.heartbeats.push(target.clone());
            return;
        }
        let late = schedule::late_limit(&target.spec).min(PLAN_LATE);
        let mut spec = None;
        let upto = self.from + chrono::Duration::seconds(60);
        for (_, at) in schedule::due_each_in([target], self.from, upto) {
            // Shared by the instants of one target: a 10 s target is due six times.
            let encoded = match &spec {
                Some(encoded) => Arc::clone(encoded),
                None => match serde_json::to_string(&target.spec) {
                    Ok(json) => Arc::clone(spec.insert(Arc::<str>::from(json))),
                    Err(e) => {
                        tracing::error!(tenant = %target.tenant, target = %target.id(), error = %e,
                            "target not planned: its spec cannot be encoded");
                        return;
                    }
                },
            };
            self.due.push(PlannedProbe {
                tenant,
                due: at,
                interval: target.spec.interval.as_duration(),
                slot: at,
                late,
                group_size: 0,
                finest,
                group: 0,
                id: target.id().clone(),
                spec: encoded,
            });
        }
    }
}

/// How many of a tenant's targets (their finest groups, sorted) are in `group`.
fn targets_in(finest: &[u16], group: Group) -> usize {
    let range = group.finest_range();
    let from = finest.partition_point(|i| u32::from(*i) < range.start);
    let to = finest.partition_point(|i| u32::from(*i) < range.end);
    to - from
}

/// The first instant after `now` at which [`missed_heartbeat`] reports a new slot.
fn next_miss_after(
    target: &Target,
    last_ping: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let CheckSpec::Heartbeat(hb) = &target.spec.check else {
        return None;
    };
    let late_at = late_at(target, hb, last_ping)?;
    if now < late_at {
        return Some(late_at);
    }
    let period_ms = hb.period.as_chrono().num_milliseconds().max(1);
    let late_ms = (now - late_at).num_milliseconds();
    late_at.checked_add_signed(chrono::Duration::milliseconds(
        late_ms - late_ms.rem_euclid(period_ms) + period_ms,
    ))
}

/// The first instant the job counts as late: a ping exactly at the deadline is on time.
/// `None` past the end of time (a stored instant or period near chrono's limits): never late.
fn late_at(
    target: &Target,
    hb: &netmon_core::target::HeartbeatCheck,
    last_ping: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    last_ping
        .unwrap_or(target.created_at)
        .checked_add_signed(hb.period.as_chrono())?
        .checked_add_signed(hb.grace.as_chrono())?
        .checked_add_signed(chrono::Duration::milliseconds(1))
}

/// A failed result if the heartbeat is overdue at `upto`: its deadline (the last ping, or
/// creation, plus period and grace) has passed. Its slot is the latest of the deadline and its
/// later multiples of the period not after `upto`, so every tick of one missed period derives
/// the same result.
pub(crate) fn missed_heartbeat(
    target: &Target,
    last_ping: Option<DateTime<Utc>>,
    upto: DateTime<Utc>,
) -> Option<ProbeResult> {
    let CheckSpec::Heartbeat(hb) = &target.spec.check else {
        return None;
    };
    let late_at = late_at(target, hb, last_ping)?;
    if upto < late_at {
        return None;
    }
    let period_ms = hb.period.as_chrono().num_milliseconds().max(1);
    let late_ms = (upto - late_at).num_milliseconds();
    let missed_at =
        late_at + chrono::Duration::milliseconds(late_ms - late_ms.rem_euclid(period_ms));
    let message = match last_ping {
        Some(at) => format!(
            "no ping since {} (expected every {}, grace {})",
            at.format("%Y-%m-%d %H:%M:%SZ"),
            hb.period,
            hb.grace
        ),
        None => format!(
            "never pinged (expected every {}, grace {})",
            hb.period, hb.grace
        ),
    };
    Some(ProbeResult {
        tenant: target.tenant.clone(),
        target: target.id().clone(),
        location: PUSH_LOCATION.to_owned(),
        started_at: missed_at,
        slot: Some(missed_at),
        duration_ms: 0.0,
        timings: PhaseTimings::default(),
        outcome: Outcome::Down,
        status_code: None,
        ip: None,
        certificate_expires_at: None,
        conditions: Vec::new(),
        error: Some(ProbeError::new(ErrorKind::Missed, message)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_core::target::TargetSpec;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn beat() -> Target {
        let spec: TargetSpec = serde_json::from_value(serde_json::json!({
            "id": "backup", "heartbeat": {"period": "1h", "grace": "5m"}
        }))
        .unwrap();
        Target {
            tenant: TenantId::default_tenant(),
            spec,
            version: 1,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    #[test]
    fn overdue_heartbeats_give_the_same_miss_on_every_tick_of_a_period() {
        let t = beat();
        let ping = Some(at(0));
        let ms = chrono::Duration::milliseconds(1);
        // Deadline is 1h05m after the ping; exactly at it the job is still on time.
        assert!(missed_heartbeat(&t, ping, at(3_900)).is_none());
        let r = missed_heartbeat(&t, ping, at(3_901)).expect("missed");
        assert_eq!(r.slot, Some(at(3_900) + ms));
        assert_eq!(r.outcome, Outcome::Down);
        assert!(r.error.unwrap().message.contains("no ping since"));
        // Later ticks of the same period derive the same slot (a lost tick loses nothing, and
        // the alerter counts the slot once); the next period has the next slot.
        let again = missed_heartbeat(&t, ping, at(4_500)).expect("still missed");
        assert_eq!(again.slot, Some(at(3_900) + ms));
        let next = missed_heartbeat(&t, ping, at(7_501)).expect("missed again");
        assert_eq!(next.slot, Some(at(7_500) + ms));
        // A ping after the deadline ends it.
        assert!(missed_heartbeat(&t, Some(at(4_000)), at(4_500)).is_none());
    }

    /// Records what a tick enqueues and publishes.
    #[derive(Default)]
    struct Recording {
        jobs: std::sync::Mutex<Vec<netmon_core::jobs::ProbeJob>>,
    }

    #[async_trait::async_trait]
    impl JobQueue for Recording {
        async fn enqueue(
            &self,
            jobs: Vec<netmon_core::jobs::ProbeJob>,
        ) -> Result<(), netmon_core::ports::BusError> {
            self.jobs.lock().unwrap().extend(jobs);
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl HeartbeatStore for Recording {
        async fn record_ping(
            &self,
            _: &netmon_core::ports::PingRecord,
        ) -> Result<(), netmon_core::ports::StoreError> {
            Ok(())
        }
        async fn last_pings(
            &self,
        ) -> Result<Vec<netmon_core::ports::PingRecord>, netmon_core::ports::StoreError> {
            Ok(Vec::new())
        }
    }

    #[async_trait::async_trait]
    impl EventBus for Recording {
        async fn publish(&self, _: Vec<Envelope>) -> Result<(), netmon_core::ports::BusError> {
            Ok(())
        }
    }

    /// `n` HTTP targets of the default tenant, target `i` probed every `interval(i)`.
    fn http_targets(n: usize, interval: impl Fn(usize) -> &'static str) -> Vec<Target> {
        let template: TargetSpec = serde_json::from_value(serde_json::json!({
            "id": "t", "http": {"url": "https://example.com/"}, "timeout": "5s"
        }))
        .unwrap();
        (0..n)
            .map(|i| {
                let mut spec = template.clone();
                spec.id = TargetId::parse(format!("t{i}")).unwrap();
                spec.interval = interval(i).parse().unwrap();
                Target {
                    tenant: TenantId::default_tenant(),
                    spec,
                    version: 1,
                    created_at: at(0),
                    updated_at: at(0),
                }
            })
            .collect()
    }

    /// The cloud design point: 100,000 targets planned by one tick per minute, 10 s to 24 h.
    #[tokio::test]
    async fn one_tick_plans_a_minute_of_100k_targets_in_few_sharded_jobs() {
        // 1% every 10 s, 1% daily, the rest every minute.
        let targets = http_targets(100_000, |i| match i % 100 {
            0 => "10s",
            1 => "24h",
            _ => "1m",
        });
        let sink = Arc::new(Recording::default());
        let scheduler = Scheduler::new(sink.clone(), sink.clone(), sink.clone(), 50)
            .with_slot(std::time::Duration::from_secs(10));
        let minute = schedule::floor_minute(at(600));
        let report = scheduler.plan_minute(&targets, minute).await.unwrap();
        let jobs = sink.jobs.lock().unwrap().clone();

        let mut group_sizes: HashMap<Group, usize> = HashMap::new();
        for t in &targets {
            *group_sizes
                .entry(Group::of(t.id(), group::level_for(100_000)))
                .or_default() += 1;
        }
        let mut per_target: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
        for job in &jobs {
            assert!(job.targets.len() <= 50);
            assert!(job.scheduled_for >= minute);
            assert!(job.scheduled_for < minute + chrono::Duration::seconds(60));
            let group = Group::of(&job.targets[0].id, job.group_level.unwrap_or(0));
            let size = job.group_size.unwrap_or(0) as usize;
            assert_eq!(Some(size), group_sizes.get(&group).copied(), "{group:?}");
            let offset =
                schedule::group_offset_ms(TenantId::default_tenant().as_str(), group, size);
            assert_eq!(
                job.scheduled_for.timestamp_millis() % 10_000,
                offset % 10_000,
                "at its group's instant"
            );
            for t in &job.targets {
                per_target
                    .entry(t.id.to_string())
                    .or_default()
                    .push(job.scheduled_for);
            }
        }
        let count = |i: usize| per_target.get(&format!("t{i}")).map_or(0, Vec::len);
        assert_eq!(count(0), 6, "a 10 s target six times a minute");
        assert_eq!(count(2), 1, "a 1 m target once");
        let minutely = (0..100_000).filter(|i| i % 100 >= 2).count();
        assert_eq!(
            (0..100_000)
                .filter(|i| i % 100 >= 2 && count(*i) == 1)
                .count(),
            minutely
        );
        // Each job is one stable group of the tenant's level (history reads one group).
        let level = group::level_for(100_000);
        for job in &jobs {
            assert_eq!(job.group_level, Some(level));
            let groups: std::collections::BTreeSet<Group> = job
                .targets
                .iter()
                .map(|t| Group::of(&t.id, level))
                .collect();
            assert_eq!(groups.len(), 1, "one group per job");
        }
        // A group's one-minute and daily targets leave at one instant; its 10 s targets at
        // six. So at most one partly filled job per group and instant.
        assert_eq!(
            report.probes,
            jobs.iter().map(|j| j.targets.len()).sum::<usize>()
        );
        assert!(
            jobs.len() <= report.probes.div_ceil(50) + 6 * (1 << level),
            "{} jobs",
            jobs.len()
        );
        let minutely_instants: std::collections::BTreeSet<(Group, DateTime<Utc>)> = jobs
            .iter()
            .filter(|j| {
                j.targets
                    .iter()
                    .any(|t| t.interval.as_duration().as_secs() == 60)
            })
            .map(|j| (Group::of(&j.targets[0].id, level), j.scheduled_for))
            .collect();
        assert_eq!(minutely_instants.len(), 1 << level, "one instant per group");
        // Groups are spread over the minute: no second holds three times its share.
        let mut per_second: HashMap<i64, usize> = HashMap::new();
        for job in &jobs {
            *per_second.entry(job.scheduled_for.timestamp()).or_default() += job.targets.len();
        }
        let busiest = per_second.values().max().copied().unwrap_or(0);
        assert!(
            busiest * 20 <= report.probes,
            "{busiest} probes in one second"
        );
    }

    /// A tick 45 s late (EventBridge may deliver that late) still sends every probe of the
    /// minute it plans on time: planning the tick's own minute would leave out every slot of
    /// its first 35 s (netmon-sim seed 6521 lost an outage that way).
    #[tokio::test]
    async fn a_late_tick_plans_the_next_minute_in_full() {
        let targets = http_targets(600, |_| "1m");
        let minute = schedule::floor_minute(at(6_000));
        let late = minute + chrono::Duration::seconds(45);
        let planned = |sink: &Recording| {
            sink.jobs
                .lock()
                .unwrap()
                .iter()
                .map(|j| (j.scheduled_for, j.targets.len()))
                .collect::<Vec<_>>()
        };

        let ahead = Arc::new(Recording::default());
        let report = Scheduler::new(ahead.clone(), ahead.clone(), ahead.clone(), 50)
            .with_slot(std::time::Duration::from_secs(10))
            .plan_ahead_at(&targets, minute, late)
            .await
            .unwrap();
        assert_eq!(report.probes, 600, "every one-minute target once");
        let next = minute + chrono::Duration::seconds(60);
        assert!(
            planned(&ahead)
                .iter()
                .all(|(slot, _)| *slot >= next && *slot < next + chrono::Duration::seconds(60)),
            "all in the next minute"
        );

        // The tick's own minute, planned as late, loses the groups whose instant has passed.
        let own = Arc::new(Recording::default());
        let report = Scheduler::new(own.clone(), own.clone(), own.clone(), 50)
            .with_slot(std::time::Duration::from_secs(10))
            .plan_minute_at(&targets, minute, late)
            .await
            .unwrap();
        assert!(report.probes < 600, "{} probes", report.probes);
    }

    /// Visits its targets newest tenant and id first: the streamed plan must not depend on the
    /// order a store reads them in.
    struct Reversed(netmon_testkit::memory::MemoryStore);

    #[async_trait::async_trait]
    impl TargetStore for Reversed {
        async fn get_target(
            &self,
            tenant: &TenantId,
            id: &TargetId,
        ) -> Result<Option<Target>, netmon_core::ports::StoreError> {
            self.0.get_target(tenant, id).await
        }
        async fn list_targets(
            &self,
            tenant: &TenantId,
            page: netmon_core::ports::PageRequest,
        ) -> Result<netmon_core::ports::Page<Target>, netmon_core::ports::StoreError> {
            self.0.list_targets(tenant, page).await
        }
        async fn all_targets(&self) -> Result<Vec<Target>, netmon_core::ports::StoreError> {
            self.0.all_targets().await
        }
        async fn visit_targets(
            &self,
            visit: &mut (dyn FnMut(Target) + Send),
        ) -> Result<(), netmon_core::ports::StoreError> {
            self.0
                .all_targets()
                .await?
                .into_iter()
                .rev()
                .for_each(visit);
            Ok(())
        }
        async fn put_target(
            &self,
            target: Target,
            expect: netmon_core::ports::Expect,
        ) -> Result<Target, netmon_core::ports::StoreError> {
            self.0.put_target(target, expect).await
        }
        async fn delete_target(
            &self,
            tenant: &TenantId,
            id: &TargetId,
        ) -> Result<bool, netmon_core::ports::StoreError> {
            self.0.delete_target(tenant, id).await
        }
    }

    /// The cloud tick streams its targets (`plan_ahead_from`) and sends its jobs in several
    /// batches: it sends exactly the jobs that planning from the whole list sends, late slots
    /// left out alike, whatever order the store reads targets in.
    #[tokio::test]
    async fn a_streamed_plan_sends_the_jobs_of_a_listed_plan() {
        let mut targets = http_targets(12_000, |i| if i % 7 == 0 { "10s" } else { "1m" });
        for (i, t) in targets.iter_mut().enumerate() {
            t.tenant = TenantId::parse(match i % 10 {
                0 => "small-a",
                1 => "small-b",
                _ => "large",
            })
            .unwrap();
        }
        targets.sort_by(|a, b| (&a.tenant, a.id()).cmp(&(&b.tenant, b.id())));
        let store = netmon_testkit::memory::MemoryStore::new();
        for t in &targets {
            store
                .put_target(t.clone(), netmon_core::ports::Expect::Absent)
                .await
                .unwrap();
        }
        let targets = store.all_targets().await.unwrap();
        let minute = schedule::floor_minute(at(6_000));
        // 8 s into the minute planned: the 10 s targets' first slot is already too late.
        let now = minute + chrono::Duration::seconds(68);
        let jobs_of = |sink: &Recording| {
            let mut jobs: Vec<(String, DateTime<Utc>, Vec<String>)> = sink
                .jobs
                .lock()
                .unwrap()
                .iter()
                .map(|j| {
                    let ids = j.targets.iter().map(|t| t.id.to_string()).collect();
                    (j.tenant.to_string(), j.scheduled_for, ids)
                })
                .collect();
            jobs.sort();
            jobs
        };

        let listed = Arc::new(Recording::default());
        let listed_report = Scheduler::new(listed.clone(), listed.clone(), listed.clone(), 50)
            .with_slot(std::time::Duration::from_secs(10))
            .plan_ahead_at(&targets, minute, now)
            .await
            .unwrap();
        let streamed = Arc::new(Recording::default());
        let clock = netmon_testkit::clock::ManualClock::new(now);
        let (seen, streamed_report) =
            Scheduler::new(streamed.clone(), streamed.clone(), streamed.clone(), 50)
                .with_slot(std::time::Duration::from_secs(10))
                .plan_ahead_from(&Reversed(store), minute, &clock)
                .await
                .unwrap();

        assert_eq!(seen, 12_000);
        assert!(
            streamed_report.jobs > 2 * SEND_JOBS,
            "several batches: {} jobs",
            streamed_report.jobs
        );
        assert_eq!(streamed_report, listed_report);
        let (tens, minutes) = (12_000usize.div_ceil(7), 12_000 - 12_000usize.div_ceil(7));
        assert!(
            streamed_report.probes < minutes + 6 * tens,
            "10 s targets due in the minute's first 3 s are left out: {} probes",
            streamed_report.probes
        );
        assert_eq!(jobs_of(&streamed), jobs_of(&listed));
    }

    #[test]
    fn never_pinged_counts_from_creation() {
        let r = missed_heartbeat(&beat(), None, at(4_000)).expect("missed");
        assert!(r.error.unwrap().message.contains("never pinged"));
    }

    /// What a tick publishes for heartbeats: a miss again on every tick while the job stays
    /// overdue (same slot), and otherwise the latest ping again, however old (its own publish
    /// may have been lost while ticks failed for minutes: netmon-sim found incidents left open
    /// until the next ping), so nothing depends on one tick or one publish getting through.
    #[tokio::test]
    async fn every_tick_repeats_overdue_misses_and_republishes_the_latest_ping() {
        struct Pings(Vec<PingRecord>);
        #[async_trait::async_trait]
        impl HeartbeatStore for Pings {
            async fn record_ping(
                &self,
                _: &PingRecord,
            ) -> Result<(), netmon_core::ports::StoreError> {
                Ok(())
            }
            async fn last_pings(&self) -> Result<Vec<PingRecord>, netmon_core::ports::StoreError> {
                Ok(self.0.clone())
            }
        }
        #[derive(Default)]
        struct Published(std::sync::Mutex<Vec<ProbeResult>>);
        #[async_trait::async_trait]
        impl EventBus for Published {
            async fn publish(
                &self,
                events: Vec<Envelope>,
            ) -> Result<(), netmon_core::ports::BusError> {
                for e in events {
                    if let Event::ProbeCompleted(b) = e.event {
                        self.0.lock().unwrap().extend(b.results);
                    }
                }
                Ok(())
            }
        }
        let mut fresh = beat();
        fresh.spec.id = TargetId::parse("fresh").unwrap();
        let overdue = beat();
        let minute = schedule::floor_minute(at(10_000));
        let pinged = minute - chrono::Duration::seconds(70);
        let pings = Arc::new(Pings(vec![PingRecord {
            tenant: TenantId::default_tenant(),
            target: fresh.id().clone(),
            at: pinged,
            kind: PingKind::Success,
        }]));
        let bus = Arc::new(Published::default());
        let scheduler = Scheduler::new(Arc::new(Recording::default()), pings, bus.clone(), 50);
        let targets = [fresh, overdue];
        // Up to 18 minutes on: the overdue job stays in the same missed period.
        for tick in [0, 1, 2, 10, 18] {
            bus.0.lock().unwrap().clear();
            let planned = minute + chrono::Duration::minutes(tick);
            scheduler.plan_minute(&targets, planned).await.unwrap();
            let got = bus.0.lock().unwrap().clone();
            let of = |id: &str| got.iter().find(|r| r.target.as_str() == id).cloned();
            let miss = of("backup").expect("the overdue job's miss, on every tick");
            assert_eq!(miss.outcome, Outcome::Down);
            // Created at 0, period 1h, grace 5m: overdue since 3,900 s, next period at 7,500 s.
            assert_eq!(
                miss.slot,
                Some(at(7_500) + chrono::Duration::milliseconds(1))
            );
            let ping = of("fresh").expect("the latest ping is republished, however old");
            assert_eq!((ping.outcome, ping.slot), (Outcome::Up, Some(pinged)));
        }
    }

    /// A heartbeat whose deadline lies past the end of time (schemathesis made one: a huge
    /// period) is never late, and computing that must not panic the scheduler.
    #[test]
    fn a_deadline_past_the_end_of_time_is_never_late() {
        let mut t = beat();
        t.created_at = DateTime::<Utc>::MAX_UTC - chrono::Duration::hours(1);
        assert!(missed_heartbeat(&t, None, DateTime::<Utc>::MAX_UTC).is_none());
        assert!(next_miss_after(&t, None, at(0)).is_none());
    }
}
