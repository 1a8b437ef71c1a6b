//! `StateStore`: versioned check state, atomic commits with incidents and outbox, incident listing.

use std::future::Future;

use netmon_core::group::Group;
use netmon_core::incident::Status;
use netmon_core::ports::{Expect, IncidentRecord, Outbox, StateStore, StoreError};

use super::fixtures::{at, event, incident, open_incident_state, state, target_id, tenant, unique};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: StateStore + Outbox,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    versioned_commits(&new_store().await).await;
    conflicting_commit_writes_nothing(&new_store().await).await;
    incidents_upsert_and_list_open_first_newest_first(&new_store().await).await;
    list_states_per_tenant(&new_store().await).await;
    load_states_returns_the_stored_ones(&new_store().await).await;
    load_group_states_returns_only_the_asked_ones(&new_store().await).await;
    state_flags_follow_commits(&new_store().await).await;
}

/// The overview's counts: each stored state's status and whether an incident is open, following
/// every commit, one tenant at a time.
pub async fn state_flags_follow_commits<S: StateStore + ?Sized>(store: &S) {
    use netmon_core::ports::StateFlags;
    let (t, other) = (tenant("flags"), tenant("flags-other"));
    let failing = |id: &str| open_incident_state(&t, Status::Down, id, at(5));
    let commit = async |tenant, id, expect, s| {
        store
            .commit_state(tenant, &target_id(id), expect, &s, &[], &[])
            .await
            .expect("commit")
    };
    commit(&t, "api", Expect::Absent, state(Status::Up, at(0))).await;
    let db = commit(&t, "db", Expect::Absent, failing("db-5")).await;
    commit(&other, "web", Expect::Absent, failing("web-5")).await;
    let flags = |list: Vec<(netmon_core::TargetId, StateFlags)>| {
        let mut list: Vec<(String, Status, bool)> = list
            .into_iter()
            .map(|(id, f)| (id.to_string(), f.status, f.incident_open))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    };
    assert_eq!(
        flags(store.state_flags(&t).await.expect("flags")),
        vec![
            ("api".into(), Status::Up, false),
            ("db".into(), Status::Down, true)
        ]
    );
    // Recovered: the incident closes with the same commit.
    commit(&t, "db", Expect::Version(db), state(Status::Up, at(9))).await;
    assert_eq!(
        flags(store.state_flags(&t).await.expect("flags")),
        vec![
            ("api".into(), Status::Up, false),
            ("db".into(), Status::Up, false)
        ]
    );
    assert_eq!(
        flags(store.state_flags(&other).await.expect("flags")),
        vec![("web".into(), Status::Down, true)]
    );
}

pub async fn versioned_commits<S: StateStore + ?Sized>(store: &S) {
    let t = tenant("st");
    let x = target_id("api");
    assert_eq!(store.load_state(&t, &x).await.expect("load missing"), None);

    let s1 = state(Status::Up, at(0));
    let v1 = store
        .commit_state(&t, &x, Expect::Absent, &s1, &[], &[])
        .await
        .expect("first commit");
    assert_eq!(v1, 1);
    let got = store
        .load_state(&t, &x)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!((got.value, got.version), (s1.clone(), 1));

    let s2 = state(Status::Down, at(60));
    let v2 = store
        .commit_state(&t, &x, Expect::Version(v1), &s2, &[], &[])
        .await
        .expect("commit at current version");
    assert_eq!(v2, 2);

    for (expect, why) in [
        (Expect::Version(1), "stale version"),
        (Expect::Absent, "absent but present"),
        (Expect::Version(9), "future version"),
    ] {
        let err = store
            .commit_state(&t, &x, expect, &s1, &[], &[])
            .await
            .expect_err(why);
        assert!(matches!(err, StoreError::Conflict(_)), "{why}: {err:?}");
    }
    let err = store
        .commit_state(&t, &target_id("nope"), Expect::Version(1), &s1, &[], &[])
        .await
        .expect_err("version on a missing state");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .load_state(&t, &target_id("nope"))
            .await
            .expect("load"),
        None
    );

    let got = store
        .load_state(&t, &x)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(
        (got.value, got.version),
        (s2, 2),
        "refused commits changed nothing"
    );

    let v3 = store
        .commit_state(&t, &x, Expect::Any, &s1, &[], &[])
        .await
        .expect("unconditional commit");
    assert_eq!(v3, 3);
}

pub async fn conflicting_commit_writes_nothing<S: StateStore + Outbox + ?Sized>(store: &S) {
    let t = tenant("st");
    let x = target_id("api");
    let first_event = event(&t, &unique("ev"), at(10));
    let first_incident = incident(&t, "api", "api-1", at(10), None);
    store
        .commit_state(
            &t,
            &x,
            Expect::Absent,
            &state(Status::Down, at(10)),
            std::slice::from_ref(&first_incident),
            std::slice::from_ref(&first_event),
        )
        .await
        .expect("first commit");

    let lost_event = event(&t, &unique("ev"), at(20));
    let mut resolved = first_incident.clone();
    resolved.resolved_at = Some(at(20));
    let other_incident = incident(&t, "api", "api-2", at(20), None);
    let err = store
        .commit_state(
            &t,
            &x,
            Expect::Version(7),
            &state(Status::Up, at(20)),
            &[resolved, other_incident],
            std::slice::from_ref(&lost_event),
        )
        .await
        .expect_err("stale commit");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let got = store
        .load_state(&t, &x)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(
        (got.value.status, got.version),
        (Status::Down, 1),
        "state untouched"
    );
    assert_eq!(
        store.list_incidents(&t, 10).await.expect("incidents"),
        vec![first_incident],
        "incidents untouched: no update, no insert"
    );
    let pending: Vec<_> = store
        .pending(1_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| e.envelope.id)
        .filter(|id| *id == first_event.id || *id == lost_event.id)
        .collect();
    assert_eq!(
        pending,
        vec![first_event.id],
        "no outbox entry from the refused commit"
    );
}

pub async fn incidents_upsert_and_list_open_first_newest_first<S: StateStore + ?Sized>(store: &S) {
    let t = tenant("st");
    let other = tenant("st");
    let mut version = None;
    // One commit per incident change, all on one target's state, as the alerter would.
    let mut commit = async |incidents: Vec<IncidentRecord>| {
        let expect = version.map_or(Expect::Absent, Expect::Version);
        let v = store
            .commit_state(
                &t,
                &target_id("api"),
                expect,
                &state(Status::Up, at(0)),
                &incidents,
                &[],
            )
            .await
            .expect("commit");
        version = Some(v);
    };
    let old_open = incident(&t, "db", "db-0", at(0), None);
    let closed1 = incident(&t, "api", "api-10", at(10), Some(at(20)));
    let closed2 = incident(&t, "api", "api-30", at(30), Some(at(40)));
    let later = incident(&t, "web", "web-50", at(50), None);
    commit(vec![old_open.clone()]).await;
    commit(vec![closed1.clone(), closed2.clone()]).await;
    commit(vec![later.clone()]).await;
    // Resolving upserts the same record.
    let mut later_resolved = later.clone();
    later_resolved.resolved_at = Some(at(70));
    commit(vec![later_resolved.clone()]).await;
    let newest_open = incident(&t, "api", "api-80", at(80), None);
    commit(vec![newest_open.clone()]).await;
    store
        .commit_state(
            &other,
            &target_id("api"),
            Expect::Absent,
            &state(Status::Down, at(0)),
            &[incident(&other, "api", "api-90", at(90), None)],
            &[],
        )
        .await
        .expect("other tenant");

    let all = store.list_incidents(&t, 50).await.expect("list");
    assert_eq!(
        all,
        vec![
            newest_open.clone(),
            old_open.clone(),
            later_resolved.clone(),
            closed2,
            closed1
        ],
        "open incidents first, then closed, each newest first; one record per incident id"
    );
    let top = store.list_incidents(&t, 3).await.expect("list limited");
    assert_eq!(
        top,
        vec![newest_open, old_open, later_resolved],
        "an old open incident is never pushed out by closed ones"
    );
}

pub async fn list_states_per_tenant<S: StateStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("sta"), tenant("stb"));
    let up = state(Status::Up, at(0));
    let down = state(Status::Down, at(5));
    store
        .commit_state(&a, &target_id("x"), Expect::Absent, &up, &[], &[])
        .await
        .expect("a/x");
    let v = store
        .commit_state(&a, &target_id("y"), Expect::Absent, &up, &[], &[])
        .await
        .expect("a/y");
    store
        .commit_state(&a, &target_id("y"), Expect::Version(v), &down, &[], &[])
        .await
        .expect("a/y again");
    store
        .commit_state(&b, &target_id("x"), Expect::Absent, &down, &[], &[])
        .await
        .expect("b/x");

    let mut got: Vec<_> = store
        .list_states(&a)
        .await
        .expect("list")
        .into_iter()
        .map(|(id, v)| (id.to_string(), v.value.status, v.version))
        .collect();
    got.sort_by(|l, r| l.0.cmp(&r.0));
    assert_eq!(
        got,
        vec![
            ("x".to_owned(), Status::Up, 1),
            ("y".to_owned(), Status::Down, 2)
        ]
    );
}

pub async fn load_states_returns_the_stored_ones<S: StateStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("lsa"), tenant("lsb"));
    let up = state(Status::Up, at(0));
    let down = state(Status::Down, at(5));
    let v = store
        .commit_state(&a, &target_id("x"), Expect::Absent, &up, &[], &[])
        .await
        .expect("a/x");
    store
        .commit_state(&a, &target_id("x"), Expect::Version(v), &down, &[], &[])
        .await
        .expect("a/x again");
    store
        .commit_state(&a, &target_id("y"), Expect::Absent, &up, &[], &[])
        .await
        .expect("a/y");
    store
        .commit_state(&b, &target_id("z"), Expect::Absent, &up, &[], &[])
        .await
        .expect("b/z");
    // 131 names: more than one request's worth where the store batches (DynamoDB: 100 keys).
    let mut ask: Vec<_> = (0..128).map(|i| target_id(&format!("none-{i}"))).collect();
    ask.extend([target_id("y"), target_id("z"), target_id("x")]);
    let mut got: Vec<_> = store
        .load_states(&a, &ask)
        .await
        .expect("load states")
        .into_iter()
        .map(|(id, v)| (id.to_string(), v.value, v.version))
        .collect();
    got.sort_by(|l, r| l.0.cmp(&r.0));
    assert_eq!(
        got,
        vec![("x".to_owned(), down, 2), ("y".to_owned(), up, 1)],
        "each stored state of the tenant at its version; missing ones and other tenants' left out"
    );
    assert_eq!(
        store.load_states(&a, &[]).await.expect("none asked"),
        vec![]
    );
}

/// A group read returns the states of the targets asked, whatever else the group, the other
/// groups and other tenants hold: at level 0 (the whole tenant), a middle level, and the finest.
pub async fn load_group_states_returns_only_the_asked_ones<S: StateStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("lga"), tenant("lgb"));
    let ids: Vec<String> = (0..40).map(|i| format!("n-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let (up, down) = (state(Status::Up, at(i as i64)), state(Status::Down, at(0)));
        for (t, s) in [(&a, &up), (&b, &down)] {
            store
                .commit_state(t, &target_id(id), Expect::Absent, s, &[], &[])
                .await
                .expect("commit");
        }
    }
    for level in [0, 4, netmon_core::group::MAX_LEVEL] {
        let group = Group::of(&target_id(&ids[0]), level);
        let inside: Vec<&String> = ids
            .iter()
            .filter(|id| Group::of(&target_id(id), level) == group)
            .collect();
        // Every other stored one, and one without a state.
        let stateless = (0..)
            .map(|i| format!("free-{i}"))
            .find(|id| Group::of(&target_id(id), level) == group)
            .unwrap_or_default();
        let mut ask: Vec<_> = inside.iter().step_by(2).map(|id| target_id(id)).collect();
        let mut want: Vec<_> = ask
            .iter()
            .map(|id| {
                let i: i64 = id.as_str()["n-".len()..].parse().unwrap_or_default();
                (id.to_string(), state(Status::Up, at(i)), 1)
            })
            .collect();
        ask.push(target_id(&stateless));
        let mut got: Vec<_> = store
            .load_group_states(&a, group, &ask)
            .await
            .expect("load group states")
            .into_iter()
            .map(|(id, v)| (id.to_string(), v.value, v.version))
            .collect();
        got.sort_by(|l, r| l.0.cmp(&r.0));
        want.sort_by(|l, r| l.0.cmp(&r.0));
        assert_eq!(got, want, "level {level}: {} in the group", inside.len());
    }
}
