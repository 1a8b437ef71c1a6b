//! Every store suite against `MemoryStore`, plus what only it has: the fault hook, call counts,
//! an injected clock, and the DynamoDB behaviours it copies where the suites say nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Duration;
use netmon_core::incident::Status;
use netmon_core::ports::{
    Claim, Expect, HeartbeatStore, HistoryStore, Idempotency, Outbox, PingKind, ReplyStore,
    StateStore, StoreError, TargetStore,
};
use netmon_core::result::Outcome;
use netmon_core::rpc::{RpcOutcome, RpcReply};
use netmon_core::target::{CheckSpec, HeartbeatCheck};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::{Call, Fault, MemoryStore, Op};
use netmon_testkit::suites::{self, fixtures};

async fn fresh() -> MemoryStore {
    MemoryStore::new()
}

macro_rules! suite_tests {
    ($($suite:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $suite() {
                suites::$suite::run_all(fresh).await;
            }
        )*
    };
}

suite_tests!(
    target_store,
    channel_store,
    state_store,
    outbox,
    idempotency,
    history,
    heartbeat,
    api_keys,
    maintenance,
    replies,
    notification_log,
);

/// The combined entry point against one store shared by every case, as a simulation would.
#[tokio::test]
async fn all_suites_share_one_store() {
    let store = MemoryStore::new();
    suites::run_all_store_suites(|| std::future::ready(store.clone())).await;
    assert!(store.write_calls() > 0 && store.read_calls() > 0);
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}

/// Fails every call of `op` with `fault`.
fn fail_all(store: &MemoryStore, op: Op, fault: Fault) {
    store.set_fault_hook(move |c: Call| if c.op == op { fault } else { Fault::None });
}

/// A commit as the alerter makes it: state, one incident, one event.
async fn commit_down(
    store: &MemoryStore,
    t: &netmon_core::TenantId,
    ev: &netmon_core::events::Envelope,
) -> Result<u64, StoreError> {
    store
        .commit_state(
            t,
            &fixtures::target_id("api"),
            Expect::Absent,
            &fixtures::state(Status::Down, fixtures::at(10)),
            &[fixtures::incident(
                t,
                "api",
                "api-1",
                fixtures::at(10),
                None,
            )],
            std::slice::from_ref(ev),
        )
        .await
}

async fn pending_ids(store: &MemoryStore) -> Vec<String> {
    store
        .pending(1_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| e.envelope.id)
        .collect()
}

#[tokio::test]
async fn a_fault_before_a_commit_changes_nothing() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("fb");
    let ev = fixtures::event(&t, "fb-ev", fixtures::at(10));
    fail_all(&store, Op::CommitState, Fault::Before);
    unavailable(commit_down(&store, &t, &ev).await, "commit");
    store.clear_fault_hook();

    let x = fixtures::target_id("api");
    assert_eq!(store.load_state(&t, &x).await.expect("load"), None);
    assert!(store.list_incidents(&t, 10).await.expect("list").is_empty());
    assert!(pending_ids(&store).await.is_empty());
    // The caller's retry goes through as if the first try never happened.
    assert_eq!(commit_down(&store, &t, &ev).await.expect("retry"), 1);
    assert_eq!(pending_ids(&store).await, vec![ev.id.clone()]);
    assert_eq!(store.calls(Op::CommitState), 2, "the failed call counts");
}

#[tokio::test]
async fn a_fault_after_a_commit_lands_it_but_reports_an_error() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("fa");
    let ev = fixtures::event(&t, "fa-ev", fixtures::at(10));
    fail_all(&store, Op::CommitState, Fault::After);
    unavailable(commit_down(&store, &t, &ev).await, "commit");
    store.clear_fault_hook();

    let x = fixtures::target_id("api");
    let state = store
        .load_state(&t, &x)
        .await
        .expect("load")
        .expect("the write landed");
    assert_eq!((state.value.status, state.version), (Status::Down, 1));
    assert_eq!(store.list_incidents(&t, 10).await.expect("list").len(), 1);
    assert_eq!(pending_ids(&store).await, vec![ev.id.clone()]);
    // A blind retry now conflicts, as it would against a real store.
    let err = commit_down(&store, &t, &ev).await.expect_err("retry");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn a_fault_after_a_refused_write_still_reports_unavailable() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("fr");
    store
        .put_target(fixtures::target(&t, "web", "One"), Expect::Absent)
        .await
        .expect("create");
    fail_all(&store, Op::PutTarget, Fault::After);
    // The conflict is lost with the response: the caller cannot tell what happened.
    unavailable(
        store
            .put_target(fixtures::target(&t, "web", "Two"), Expect::Absent)
            .await,
        "put",
    );
    store.clear_fault_hook();
    let got = store
        .get_target(&t, &fixtures::target_id("web"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((got.spec.name.as_str(), got.version), ("One", 1));
}

/// A claim whose response was lost holds its lease: the retry sees the work in progress.
#[tokio::test]
async fn a_lost_claim_response_leaves_the_lease_held() {
    let store = MemoryStore::new();
    fail_all(&store, Op::Claim, Fault::After);
    unavailable(
        store
            .claim("job", fixtures::at(0), Duration::seconds(60))
            .await,
        "claim",
    );
    store.clear_fault_hook();
    assert_eq!(
        store
            .claim("job", fixtures::at(1), Duration::seconds(60))
            .await
            .expect("claim"),
        Claim::InProgress
    );
    assert_eq!(
        store
            .claim("job", fixtures::at(61), Duration::seconds(60))
            .await
            .expect("claim"),
        Claim::Acquired,
        "until the lease runs out"
    );
}

#[tokio::test]
async fn the_hook_can_pick_one_call_by_its_number() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("nth");
    store.set_fault_hook(|c: Call| {
        if c == (Call {
            op: Op::Record,
            nth: 2,
        }) {
            Fault::Before
        } else {
            Fault::None
        }
    });
    let r = |secs| fixtures::result(&t, "x", "eu", fixtures::at(secs), Outcome::Up);
    store.record(&[r(0)]).await.expect("first");
    unavailable(store.record(&[r(60)]).await, "second");
    store.record(&[r(120)]).await.expect("third");
    let starts: Vec<_> = store
        .results_since(&t, &fixtures::target_id("x"), fixtures::at(0), 10)
        .await
        .expect("query")
        .into_iter()
        .map(|r| r.started_at)
        .collect();
    assert_eq!(starts, [fixtures::at(0), fixtures::at(120)]);
}

#[tokio::test]
async fn reads_fail_too_and_the_hook_may_read_the_counts() {
    let store = MemoryStore::new();
    let seen = Arc::new(AtomicU64::new(0));
    let (s, counter) = (store.clone(), seen.clone());
    // Clones share the hook and the counts, so a hook can hold one.
    store.set_fault_hook(move |c: Call| {
        counter.store(s.calls(c.op), Ordering::SeqCst);
        if c.op == Op::LastPings {
            Fault::Before
        } else {
            Fault::None
        }
    });
    unavailable(store.last_pings().await, "read");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn calls_are_counted_per_operation() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("cnt");
    let x = fixtures::target_id("web");
    store
        .put_target(fixtures::target(&t, "web", "Web"), Expect::Absent)
        .await
        .expect("put");
    for _ in 0..3 {
        store.get_target(&t, &x).await.expect("get");
    }
    let _ = store
        .put_target(fixtures::target(&t, "web", "Again"), Expect::Absent)
        .await
        .expect_err("conflict");
    store.pending(10).await.expect("pending");

    assert_eq!(store.calls(Op::GetTarget), 3);
    assert_eq!(store.calls(Op::PutTarget), 2, "refused calls count");
    assert_eq!(store.calls(Op::DeleteTarget), 0);
    assert_eq!(
        store.call_counts().into_iter().collect::<Vec<_>>(),
        [(Op::GetTarget, 3), (Op::PutTarget, 2), (Op::Pending, 1)]
    );
    assert_eq!((store.write_calls(), store.read_calls()), (2, 4));
    store.reset_calls();
    assert!(store.call_counts().is_empty());
}

#[tokio::test]
async fn outbox_times_come_from_an_injected_clock() {
    let clock = Arc::new(ManualClock::new(fixtures::at(500)));
    let store = MemoryStore::with_clock(clock.clone());
    let t = fixtures::tenant("clk");
    let ev = fixtures::event(&t, "clk-ev", fixtures::at(1));
    commit_down(&store, &t, &ev).await.expect("commit");
    clock.advance(std::time::Duration::from_secs(60));
    let entries = store.pending(10).await.expect("pending");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].created_at, fixtures::at(500));
}

/// The suites leave these open; the store follows DynamoDB.
#[tokio::test]
async fn a_heartbeat_token_names_one_target() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("tokc");
    let with_token = |id: &str| {
        let mut x = fixtures::target(&t, id, id);
        x.spec.check = CheckSpec::Heartbeat(HeartbeatCheck {
            period: netmon_core::HumanDuration::from_secs(60),
            grace: netmon_core::HumanDuration::from_secs(10),
            token: Some("shared-token".into()),
        });
        x
    };
    store
        .put_target(with_token("a"), Expect::Absent)
        .await
        .expect("first holder");
    let err = store
        .put_target(with_token("b"), Expect::Absent)
        .await
        .expect_err("second holder");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .get_target(&t, &fixtures::target_id("b"))
            .await
            .expect("get"),
        None
    );
    // Re-writing the holder keeps its token.
    store
        .put_target(with_token("a"), Expect::Version(1))
        .await
        .expect("holder rewrites");
    let found = store
        .find_by_heartbeat_token("shared-token")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id().as_str(), "a");
    // Deleted, the token is free again.
    store
        .delete_target(&t, &fixtures::target_id("a"))
        .await
        .expect("delete");
    store
        .put_target(with_token("b"), Expect::Absent)
        .await
        .expect("token free");
}

#[tokio::test]
async fn deleting_a_target_forgets_its_last_ping() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("dping");
    store
        .put_target(fixtures::target(&t, "job", "Job"), Expect::Absent)
        .await
        .expect("put");
    store
        .record_ping(&fixtures::ping(
            &t,
            "job",
            fixtures::at(5),
            PingKind::Success,
        ))
        .await
        .expect("ping");
    store
        .delete_target(&t, &fixtures::target_id("job"))
        .await
        .expect("delete");
    assert!(store.last_pings().await.expect("pings").is_empty());
}

#[tokio::test]
async fn replies_need_a_valid_correlation_id() {
    let store = MemoryStore::new();
    let reply = RpcReply {
        correlation_id: "not a valid id!".into(),
        tenant: fixtures::tenant("rpcv"),
        at: fixtures::at(1),
        outcome: RpcOutcome::Failure {
            message: "x".into(),
        },
    };
    let err = store
        .put_reply(&reply, fixtures::at(60))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(store.get_reply("not a valid id!").await.expect("get"), None);
}

#[tokio::test]
async fn pending_returns_at_most_a_thousand() {
    let store = MemoryStore::new();
    let t = fixtures::tenant("cap");
    let events: Vec<_> = (0..1_005)
        .map(|i| fixtures::event(&t, &format!("cap-{i}"), fixtures::at(i)))
        .collect();
    store
        .commit_state(
            &t,
            &fixtures::target_id("x"),
            Expect::Absent,
            &fixtures::state(Status::Up, fixtures::at(0)),
            &[],
            &events,
        )
        .await
        .expect("commit");
    let page = store.pending(5_000).await.expect("pending");
    assert_eq!(page.len(), 1_000);
    assert_eq!(page[0].envelope.id, "cap-0", "oldest first");
    assert!(store.pending(0).await.expect("pending").is_empty());
}
