//! The alerter with what a job carries of its targets: a result that changes nothing reads no
//! target, and a change is applied to the target as it is when the alerter commits it, so a
//! target deleted, disabled or renamed after its job was planned is never alerted on as it was.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use netmon_app::services::alerter::{AlertReport, Alerter, RelayMode};
use netmon_app::services::relay::OutboxRelay;
use netmon_core::events::{AlertContext, Envelope, Event, ProbeBatch};
use netmon_core::group::Group;
use netmon_core::incident::{CheckState, Status};
use netmon_core::ports::{
    Expect, IncidentRecord, Outbox, StateStore, StoreError, TargetStore, Versioned,
};
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::target::Target;
use netmon_core::{TargetId, TenantId};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::NoBus;
use netmon_testkit::memory::{MemoryStore, Op};
use netmon_testkit::suites::fixtures;

struct Setup {
    store: Arc<MemoryStore>,
    alerter: Alerter,
    tenant: TenantId,
    target: Target,
}

/// One target, `web`, opening an incident on its first failure.
async fn setup() -> Setup {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let tenant = fixtures::tenant("alert");
    let mut target = fixtures::target(&tenant, "web", "Web");
    target.spec.failure_threshold = 1;
    store
        .put_target(target.clone(), Expect::Absent)
        .await
        .expect("put target");
    let relay = Arc::new(OutboxRelay::new(store.clone(), Arc::new(NoBus)));
    // Background: nothing relays, so the outbox keeps every event the alerter committed.
    let alerter = Alerter::new(
        store.clone(),
        store.clone(),
        clock,
        relay,
        RelayMode::Background,
    );
    Setup {
        store,
        alerter,
        tenant,
        target,
    }
}

impl Setup {
    /// A one-result batch at `secs`, carrying `web`'s context as planned now, or nothing (a
    /// batch from before contexts).
    fn batch(&self, secs: i64, outcome: Outcome, carry: bool) -> Envelope {
        let result: ProbeResult =
            fixtures::result(&self.tenant, "web", "eu", fixtures::at(secs), outcome);
        Envelope::new(
            Event::ProbeCompleted(ProbeBatch {
                job_id: format!("job-{secs}"),
                location: "eu".into(),
                results: vec![result],
                group_level: None,
                group_size: None,
                targets: if carry {
                    AlertContext::of(&self.target.spec).into_iter().collect()
                } else {
                    Vec::new()
                },
            }),
            self.tenant.clone(),
            "prober",
            fixtures::at(secs + 1),
        )
    }

    async fn handle(&self, env: &Envelope) -> AlertReport {
        self.alerter.handle(env).await.expect("handled")
    }

    async fn status(&self) -> Option<Status> {
        self.store
            .load_state(&self.tenant, &self.target.spec.id)
            .await
            .expect("load")
            .map(|v| v.value.status)
    }

    async fn events(&self) -> Vec<Envelope> {
        let pending = self.store.pending(100).await.expect("pending");
        pending
            .into_iter()
            .map(|e| e.envelope)
            .filter(|e| e.tenant == self.tenant)
            .collect()
    }
}

#[tokio::test]
async fn a_result_that_changes_nothing_reads_only_its_state() {
    let s = setup().await;
    // The first results set the state (until the success counter saturates): changes, each
    // applied to the target as read.
    let mut writes = 0;
    for i in 0..3 {
        writes += s
            .handle(&s.batch(60 * i, Outcome::Up, true))
            .await
            .state_writes;
    }
    assert!(writes > 0);
    assert_eq!(
        s.store.calls(Op::GetTarget),
        writes as u64,
        "a target read per change"
    );
    assert_eq!(s.status().await, Some(Status::Up));

    s.store.reset_calls();
    for i in 3..=7 {
        let r = s.handle(&s.batch(60 * i, Outcome::Up, true)).await;
        assert_eq!(r.state_writes, 0, "steady: nothing to write");
    }
    assert_eq!(
        s.store.calls(Op::GetTarget),
        0,
        "no target read in the steady state"
    );
    assert_eq!(s.store.calls(Op::LoadState), 5, "one state read per result");
    assert_eq!(s.store.calls(Op::CommitState), 0);

    // Without a context (a batch from before it existed) the target is read, as before.
    s.store.reset_calls();
    s.handle(&s.batch(480, Outcome::Up, false)).await;
    assert_eq!(s.store.calls(Op::GetTarget), 1);
}

#[tokio::test]
async fn a_change_for_a_target_deleted_after_planning_writes_nothing() {
    let s = setup().await;
    s.handle(&s.batch(0, Outcome::Up, true)).await;
    // Planned while `web` existed; deleted before its result reaches the alerter.
    let down = s.batch(60, Outcome::Down, true);
    assert!(
        s.store
            .delete_target(&s.tenant, &s.target.spec.id)
            .await
            .expect("delete")
    );
    let r = s.handle(&down).await;
    assert_eq!(r.skipped_unknown_target, 1, "{r:?}");
    assert_eq!((r.state_writes, r.events), (0, 0), "{r:?}");
    assert_eq!(
        s.status().await,
        None,
        "no state recreated for a deleted target"
    );
    assert!(
        s.store
            .list_incidents(&s.tenant, 10)
            .await
            .expect("incidents")
            .is_empty(),
        "no incident opened for a deleted target"
    );
    assert!(s.events().await.is_empty(), "no incident event");
}

#[tokio::test]
async fn a_change_for_a_target_disabled_after_planning_writes_nothing() {
    let s = setup().await;
    s.handle(&s.batch(0, Outcome::Up, true)).await;
    let down = s.batch(60, Outcome::Down, true);
    let mut disabled = s.target.clone();
    disabled.spec.enabled = false;
    s.store
        .put_target(disabled, Expect::Version(1))
        .await
        .expect("disable");
    let r = s.handle(&down).await;
    assert_eq!((r.state_writes, r.events), (0, 0), "{r:?}");
    assert_eq!(s.status().await, Some(Status::Up), "state left as it was");
    assert!(s.events().await.is_empty(), "no incident event");
}

#[tokio::test]
async fn a_change_is_applied_to_the_target_as_it_is_now() {
    let s = setup().await;
    s.handle(&s.batch(0, Outcome::Up, true)).await;
    let down = s.batch(60, Outcome::Down, true);
    let mut renamed = s.target.clone();
    renamed.spec.name = "Web shop".into();
    s.store
        .put_target(renamed, Expect::Version(1))
        .await
        .expect("rename");
    let r = s.handle(&down).await;
    assert_eq!((r.state_writes, r.events), (1, 1), "{r:?}");
    assert_eq!(s.status().await, Some(Status::Down));
    let events = s.events().await;
    let [opened] = events.as_slice() else {
        panic!("one incident event: {events:?}");
    };
    let Event::IncidentOpened(o) = &opened.event else {
        panic!("an opened event: {opened:?}");
    };
    assert_eq!(o.subject.target_name, "Web shop");
    assert_eq!(o.subject.check, "GET https://example.com/web");
}

#[tokio::test]
async fn two_results_of_one_target_in_a_batch_both_apply() {
    let s = setup().await;
    let mut env = s.batch(0, Outcome::Up, true);
    if let Event::ProbeCompleted(b) = &mut env.event {
        let mut down = b.results[0].clone();
        down.started_at = fixtures::at(60);
        down.outcome = Outcome::Down;
        // Newest first: the alerter applies them oldest slot first.
        b.results.insert(0, down);
    }
    let r = s.handle(&env).await;
    assert_eq!((r.state_writes, r.events), (2, 1), "{r:?}");
    assert_eq!(
        s.store.calls(Op::LoadState),
        1,
        "the batch's state read once"
    );
    assert_eq!(s.status().await, Some(Status::Down));
}

/// How the alerter asked for a batch's states.
#[derive(Debug, Clone, PartialEq)]
enum Read {
    Group(Group, Vec<TargetId>),
    Keys(usize),
}

/// A state store that records which batch read the alerter chose.
struct ReadLog {
    inner: Arc<MemoryStore>,
    reads: Mutex<Vec<Read>>,
}

impl ReadLog {
    fn take(&self) -> Vec<Read> {
        std::mem::take(&mut *self.reads.lock().expect("reads"))
    }
}

#[async_trait]
impl StateStore for ReadLog {
    async fn load_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<Versioned<CheckState>>, StoreError> {
        self.inner.load_state(tenant, target).await
    }

    async fn load_states(
        &self,
        tenant: &TenantId,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        self.reads
            .lock()
            .expect("reads")
            .push(Read::Keys(targets.len()));
        self.inner.load_states(tenant, targets).await
    }

    async fn load_group_states(
        &self,
        tenant: &TenantId,
        group: Group,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        self.reads
            .lock()
            .expect("reads")
            .push(Read::Group(group, targets.to_vec()));
        self.inner.load_states(tenant, targets).await
    }

    async fn commit_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        expect: Expect,
        state: &CheckState,
        incidents: &[IncidentRecord],
        outbox: &[Envelope],
    ) -> Result<u64, StoreError> {
        self.inner
            .commit_state(tenant, target, expect, state, incidents, outbox)
            .await
    }

    async fn list_states(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        self.inner.list_states(tenant).await
    }

    async fn list_incidents(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.inner.list_incidents(tenant, limit).await
    }
}

/// A range read of the job's group is billed on the group's states (~12 a read unit), a read
/// by key per state: the alerter reads the group only when the job says which group and how
/// big it is, every result is in it, and the group has at most 12 states per result.
#[tokio::test]
async fn a_batch_reads_its_group_as_a_range_only_when_that_is_cheaper() {
    const LEVEL: u8 = 3;
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let log = Arc::new(ReadLog {
        inner: store.clone(),
        reads: Mutex::new(Vec::new()),
    });
    let relay = Arc::new(OutboxRelay::new(store.clone(), Arc::new(NoBus)));
    let alerter = Alerter::new(
        store.clone(),
        log.clone(),
        clock,
        relay,
        RelayMode::Background,
    );
    let tenant = fixtures::tenant("ranged");
    let group = Group::of(&fixtures::target_id("t0"), LEVEL);
    let (mut inside, mut outside) = (Vec::new(), None);
    for i in 0.. {
        let id = format!("t{i}");
        if Group::of(&fixtures::target_id(&id), LEVEL) == group {
            inside.push(id);
        } else {
            outside.get_or_insert(id);
        }
        if inside.len() == 3 && outside.is_some() {
            break;
        }
    }
    let outside = outside.unwrap_or_default();
    let batch = |ids: &[&String], level: Option<u8>, size: Option<u32>| {
        let results = ids
            .iter()
            .map(|id| fixtures::result(&tenant, id, "eu", fixtures::at(0), Outcome::Up))
            .collect();
        Envelope::new(
            Event::ProbeCompleted(ProbeBatch {
                job_id: "job".into(),
                location: "eu".into(),
                results,
                group_level: level,
                group_size: size,
                targets: Vec::new(),
            }),
            tenant.clone(),
            "prober",
            fixtures::at(1),
        )
    };
    let three: Vec<&String> = inside.iter().collect();
    let mut asked: Vec<TargetId> = inside.iter().map(|id| fixtures::target_id(id)).collect();
    asked.sort();
    let cases = [
        (
            "36 in the group: 12 a result",
            batch(&three, Some(LEVEL), Some(36)),
            vec![Read::Group(group, asked.clone())],
        ),
        (
            "37 in the group",
            batch(&three, Some(LEVEL), Some(37)),
            vec![Read::Keys(3)],
        ),
        (
            "no group size",
            batch(&three, Some(LEVEL), None),
            vec![Read::Keys(3)],
        ),
        (
            "no group level",
            batch(&three, None, Some(3)),
            vec![Read::Keys(3)],
        ),
        (
            "a result outside the group",
            batch(&[&inside[0], &outside], Some(LEVEL), Some(2)),
            vec![Read::Keys(2)],
        ),
    ];
    for (what, env, want) in cases {
        alerter.handle(&env).await.expect("handled");
        assert_eq!(log.take(), want, "{what}");
    }
}

/// Maintenance windows only hold changes back, so a batch that changes nothing never reads
/// them; a change inside a window reads them (once a batch) and is still held back.
#[tokio::test]
async fn maintenance_windows_are_read_only_for_a_change() {
    use netmon_core::ports::MaintenanceStore;
    let mut s = setup().await;
    let relay = Arc::new(OutboxRelay::new(s.store.clone(), Arc::new(NoBus)));
    s.alerter = Alerter::new(
        s.store.clone(),
        s.store.clone(),
        Arc::new(ManualClock::at_fixed_start()),
        relay,
        RelayMode::Background,
    )
    .with_maintenance(s.store.clone());
    let window = fixtures::window(
        &s.tenant,
        "upgrade",
        fixtures::at(0),
        fixtures::at(3_600),
        &["web"],
    );
    s.store
        .put_window(window, Expect::Absent)
        .await
        .expect("put window");
    for i in 0..3 {
        s.handle(&s.batch(60 * i, Outcome::Up, true)).await;
    }
    s.store.reset_calls();
    for i in 3..6 {
        let r = s.handle(&s.batch(60 * i, Outcome::Up, true)).await;
        assert_eq!(r.state_writes, 0);
    }
    assert_eq!(s.store.calls(Op::ListWindows), 0, "steady: no window read");

    let r = s.handle(&s.batch(360, Outcome::Down, true)).await;
    assert_eq!(
        s.store.calls(Op::ListWindows),
        1,
        "a change reads the windows"
    );
    assert_eq!(r.in_maintenance, 1);
    assert!(
        s.events().await.is_empty(),
        "held back: {:?}",
        s.events().await
    );
    assert_eq!(s.status().await, Some(Status::Down));
}
