//! `TargetStore`: optimistic versioning, pagination, tenant isolation, delete semantics.

use std::collections::BTreeSet;
use std::future::Future;

use netmon_core::incident::Status;
use netmon_core::ports::{Expect, PageRequest, StateStore, StoreError, TargetStore};

use super::fixtures::{at, state, target, target_id, tenant, unique};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: TargetStore + StateStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    crud_roundtrip(&new_store().await).await;
    create_conflicts_when_present(&new_store().await).await;
    stale_version_conflicts(&new_store().await).await;
    any_upserts(&new_store().await).await;
    pagination_covers_every_item_once(&new_store().await).await;
    tenant_isolation(&new_store().await).await;
    delete_reports_existence_and_removes_state(&new_store().await).await;
    heartbeat_tokens_find_their_target(&new_store().await).await;
    public_targets_follow_the_flag(&new_store().await).await;
    target_flags_follow_puts(&new_store().await).await;
}

/// The overview's counts: each target's id, enabled flag and (when asked) tags, in id order up
/// to a bound, following updates and deletes, one tenant at a time.
pub(crate) async fn target_flags_follow_puts<S: TargetStore + ?Sized>(store: &S) {
    use netmon_core::ports::TargetFlags;
    let (t, other) = (tenant("flags"), tenant("flags-other"));
    for (id, enabled, tags) in [
        ("a", true, vec!["x"]),
        ("b", false, vec![]),
        ("c", true, vec!["x", "y"]),
    ] {
        let mut x = target(&t, id, "T");
        x.spec.enabled = enabled;
        x.spec.tags = tags.into_iter().map(str::to_owned).collect();
        store.put_target(x, Expect::Absent).await.expect("create");
    }
    store
        .put_target(target(&other, "z", "Theirs"), Expect::Absent)
        .await
        .expect("create");
    let flag = |id: &str, enabled: bool, tags: &[&str]| TargetFlags {
        id: target_id(id),
        enabled,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    };
    assert_eq!(
        store.target_flags(&t, 10, true).await.expect("flags"),
        (
            vec![
                flag("a", true, &["x"]),
                flag("b", false, &[]),
                flag("c", true, &["x", "y"])
            ],
            false
        )
    );
    assert_eq!(
        store.target_flags(&t, 10, false).await.expect("flags"),
        (
            vec![
                flag("a", true, &[]),
                flag("b", false, &[]),
                flag("c", true, &[])
            ],
            false
        ),
        "tags only when asked"
    );
    assert_eq!(
        store.target_flags(&t, 2, false).await.expect("flags"),
        (vec![flag("a", true, &[]), flag("b", false, &[])], true),
        "bounded, and says more exist"
    );
    assert!(
        !store.target_flags(&t, 3, false).await.expect("flags").1,
        "exactly the bound is not more"
    );
    // Re-enabled and re-tagged, and deleted.
    let mut b = store
        .get_target(&t, &target_id("b"))
        .await
        .expect("get")
        .expect("b");
    b.spec.enabled = true;
    b.spec.tags = vec!["z".into()];
    let version = b.version;
    store
        .put_target(b, Expect::Version(version))
        .await
        .expect("update");
    assert!(
        store
            .delete_target(&t, &target_id("a"))
            .await
            .expect("delete")
    );
    assert_eq!(
        store.target_flags(&t, 10, true).await.expect("flags"),
        (
            vec![flag("b", true, &["z"]), flag("c", true, &["x", "y"])],
            false
        )
    );
}

/// The status page's list: only public targets, in id order, at most `limit` with the rest
/// counted; it follows updates and deletes and never shows another tenant's targets.
pub(crate) async fn public_targets_follow_the_flag<S: TargetStore + ?Sized>(store: &S) {
    let (t, other) = (tenant("pub"), tenant("pub-other"));
    let ids = |ts: &[netmon_core::target::Target]| -> Vec<String> {
        ts.iter().map(|t| t.id().to_string()).collect()
    };
    for (i, public) in [true, false, true, true, false, true]
        .into_iter()
        .enumerate()
    {
        let mut x = target(&t, &format!("t{i}"), "T");
        x.spec.public = public;
        store.put_target(x, Expect::Absent).await.expect("create");
    }
    let mut foreign = target(&other, "t9", "Theirs");
    foreign.spec.public = true;
    store
        .put_target(foreign, Expect::Absent)
        .await
        .expect("create");

    let (shown, more) = store.public_targets(&t, 10).await.expect("list");
    assert_eq!(
        (ids(&shown), more),
        (vec!["t0".into(), "t2".into(), "t3".into(), "t5".into()], 0)
    );
    let (shown, more) = store.public_targets(&t, 2).await.expect("list");
    assert_eq!((ids(&shown), more), (vec!["t0".into(), "t2".into()], 2));

    // Made private, made public, deleted.
    for (id, public) in [("t0", false), ("t1", true)] {
        let mut x = store
            .get_target(&t, &target_id(id))
            .await
            .expect("get")
            .expect("stored");
        x.spec.public = public;
        let version = x.version;
        store
            .put_target(x, Expect::Version(version))
            .await
            .expect("update");
    }
    assert!(
        store
            .delete_target(&t, &target_id("t5"))
            .await
            .expect("delete")
    );
    let (shown, more) = store.public_targets(&t, 10).await.expect("list");
    assert_eq!(
        (ids(&shown), more),
        (vec!["t1".into(), "t2".into(), "t3".into()], 0)
    );

    let (shown, more) = store
        .public_targets(&tenant("pub-none"), 10)
        .await
        .expect("list");
    assert_eq!((shown.len(), more), (0, 0));
}

/// Pings arrive with only a token; the store must map it to the target, following updates and
/// deletes.
pub(crate) async fn heartbeat_tokens_find_their_target<S: TargetStore + ?Sized>(store: &S) {
    use netmon_core::target::{CheckSpec, HeartbeatCheck};
    let t = tenant("tok");
    let token = unique("tok");
    let mut beat = target(&t, "job", "Job");
    beat.spec.check = CheckSpec::Heartbeat(HeartbeatCheck {
        period: netmon_core::HumanDuration::from_secs(3600),
        grace: netmon_core::HumanDuration::from_secs(60),
        token: Some(token.clone()),
    });
    assert_eq!(
        store.find_by_heartbeat_token(&token).await.expect("find"),
        None
    );
    let stored = store
        .put_target(beat, Expect::Absent)
        .await
        .expect("create");
    let found = store
        .find_by_heartbeat_token(&token)
        .await
        .expect("find")
        .expect("token maps to its target");
    assert_eq!(
        (found.tenant.clone(), found.id().clone()),
        (t.clone(), target_id("job"))
    );
    assert_eq!(
        store
            .find_by_heartbeat_token("no-such-token")
            .await
            .expect("find"),
        None
    );

    let new_token = unique("tok2");
    let mut rotated = stored.clone();
    if let CheckSpec::Heartbeat(hb) = &mut rotated.spec.check {
        hb.token = Some(new_token.clone());
    }
    store
        .put_target(rotated, Expect::Version(stored.version))
        .await
        .expect("rotate token");
    assert_eq!(
        store.find_by_heartbeat_token(&token).await.expect("find"),
        None,
        "old token is dead"
    );
    assert!(
        store
            .find_by_heartbeat_token(&new_token)
            .await
            .expect("find")
            .is_some()
    );

    store
        .delete_target(&t, &target_id("job"))
        .await
        .expect("delete");
    assert_eq!(
        store
            .find_by_heartbeat_token(&new_token)
            .await
            .expect("find"),
        None
    );
}

pub async fn crud_roundtrip<S: TargetStore + ?Sized>(store: &S) {
    let t = tenant("tgt");
    let web = target_id("web");
    assert_eq!(store.get_target(&t, &web).await.expect("get missing"), None);

    let input = target(&t, "web", "Web");
    let stored = store
        .put_target(input.clone(), Expect::Absent)
        .await
        .expect("create");
    assert_eq!(stored.version, 1, "a new target starts at version 1");
    assert_eq!(stored.spec, input.spec);
    assert_eq!(stored.tenant, t);
    assert_eq!(
        store.get_target(&t, &web).await.expect("get"),
        Some(stored.clone())
    );

    let mut changed = stored.clone();
    changed.spec.name = "Web (renamed)".into();
    changed.updated_at = at(60);
    let updated = store
        .put_target(changed, Expect::Version(1))
        .await
        .expect("update at the current version");
    assert_eq!(updated.version, 2, "every write bumps the version");
    let got = store
        .get_target(&t, &web)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got, updated);
    assert_eq!(got.spec.name, "Web (renamed)");
    assert_eq!(got.updated_at, at(60));
}

pub async fn create_conflicts_when_present<S: TargetStore + ?Sized>(store: &S) {
    let t = tenant("tgt");
    store
        .put_target(target(&t, "api", "First"), Expect::Absent)
        .await
        .expect("create");
    let err = store
        .put_target(target(&t, "api", "Second"), Expect::Absent)
        .await
        .expect_err("creating an existing target must fail");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let got = store
        .get_target(&t, &target_id("api"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (got.spec.name.as_str(), got.version),
        ("First", 1),
        "refused write changed nothing"
    );
}

pub async fn stale_version_conflicts<S: TargetStore + ?Sized>(store: &S) {
    let t = tenant("tgt");
    let v1 = store
        .put_target(target(&t, "db", "One"), Expect::Absent)
        .await
        .expect("create");
    let v2 = store
        .put_target(target(&t, "db", "Two"), Expect::Version(v1.version))
        .await
        .expect("update");
    assert_eq!(v2.version, 2);
    let err = store
        .put_target(target(&t, "db", "Stale"), Expect::Version(1))
        .await
        .expect_err("a stale version must conflict");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .put_target(target(&t, "missing", "Nope"), Expect::Version(1))
        .await
        .expect_err("updating a missing target must conflict");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .get_target(&t, &target_id("missing"))
            .await
            .expect("get"),
        None,
        "a refused update must not create"
    );
    let got = store
        .get_target(&t, &target_id("db"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((got.spec.name.as_str(), got.version), ("Two", 2));
}

pub async fn any_upserts<S: TargetStore + ?Sized>(store: &S) {
    let t = tenant("tgt");
    let a = store
        .put_target(target(&t, "dns", "A"), Expect::Any)
        .await
        .expect("upsert creates");
    assert_eq!(a.version, 1);
    let b = store
        .put_target(target(&t, "dns", "B"), Expect::Any)
        .await
        .expect("upsert replaces");
    assert_eq!(b.version, 2);
    let got = store
        .get_target(&t, &target_id("dns"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got, b);
}

pub async fn pagination_covers_every_item_once<S: TargetStore + ?Sized>(store: &S) {
    let t = tenant("tgt");
    let ids = ["t5", "t1", "t7", "t3", "t2", "t6", "t4"];
    for id in ids {
        store
            .put_target(target(&t, id, id), Expect::Absent)
            .await
            .expect("create");
    }
    // Another tenant's targets sort in between ours if tenants were ignored.
    let other = tenant("tgt");
    store
        .put_target(target(&other, "t35", "other"), Expect::Absent)
        .await
        .expect("create other tenant's");

    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..ids.len() + 2 {
        let page = store
            .list_targets(
                &t,
                PageRequest {
                    limit: 3,
                    after: after.clone(),
                },
            )
            .await
            .expect("list page");
        assert!(
            page.items.len() <= 3,
            "page over its limit: {}",
            page.items.len()
        );
        seen.extend(page.items.iter().map(|x| x.id().to_string()));
        assert!(page.items.iter().all(|x| x.tenant == t));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        seen, want,
        "pages must cover every target once, in id order"
    );

    let all = store
        .list_targets(
            &t,
            PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .expect("list all");
    assert_eq!(all.items.len(), ids.len());
    assert_eq!(
        all.next, None,
        "a page holding everything has no next cursor"
    );
}

pub async fn tenant_isolation<S: TargetStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("tga"), tenant("tgb"));
    let web = target_id("web");
    let ta = store
        .put_target(target(&a, "web", "A web"), Expect::Absent)
        .await
        .expect("a");
    let tb = store
        .put_target(target(&b, "web", "B web"), Expect::Absent)
        .await
        .expect("same id in another tenant is a different target");
    store
        .put_target(target(&b, "only-b", "B"), Expect::Absent)
        .await
        .expect("b2");

    let list_a = store
        .list_targets(
            &a,
            PageRequest {
                limit: 50,
                after: None,
            },
        )
        .await
        .expect("list a");
    assert_eq!(list_a.items, vec![ta.clone()]);
    assert_eq!(
        store.get_target(&b, &web).await.expect("get b"),
        Some(tb.clone())
    );

    let all: Vec<_> = store
        .all_targets()
        .await
        .expect("all")
        .into_iter()
        .filter(|x| x.tenant == a || x.tenant == b)
        .map(|x| (x.tenant.to_string(), x.id().to_string()))
        .collect();
    let all: BTreeSet<_> = all.into_iter().collect();
    let want: BTreeSet<_> = [(&a, "web"), (&b, "web"), (&b, "only-b")]
        .into_iter()
        .map(|(t, id)| (t.to_string(), id.to_owned()))
        .collect();
    assert_eq!(all, want, "all_targets spans tenants");
    let mut visited = BTreeSet::new();
    store
        .visit_targets(&mut |x| {
            if x.tenant == a || x.tenant == b {
                visited.insert((x.tenant.to_string(), x.id().to_string()));
            }
        })
        .await
        .expect("visit");
    assert_eq!(
        visited, want,
        "visit_targets hands over what all_targets lists"
    );

    assert!(store.delete_target(&a, &web).await.expect("delete a"));
    assert_eq!(store.get_target(&a, &web).await.expect("get a"), None);
    assert_eq!(
        store.get_target(&b, &web).await.expect("get b"),
        Some(tb),
        "deleting in one tenant leaves the other alone"
    );
}

pub async fn delete_reports_existence_and_removes_state<S>(store: &S)
where
    S: TargetStore + StateStore + ?Sized,
{
    let t = tenant("tgt");
    let id = target_id("gone");
    let keep = target_id("kept");
    store
        .put_target(target(&t, "gone", "Gone"), Expect::Absent)
        .await
        .expect("create");
    store
        .put_target(target(&t, "kept", "Kept"), Expect::Absent)
        .await
        .expect("create");
    for x in [&id, &keep] {
        store
            .commit_state(&t, x, Expect::Absent, &state(Status::Up, at(1)), &[], &[])
            .await
            .expect("commit state");
    }

    assert!(
        store.delete_target(&t, &id).await.expect("delete"),
        "it existed"
    );
    assert_eq!(store.get_target(&t, &id).await.expect("get"), None);
    assert_eq!(
        store.load_state(&t, &id).await.expect("load"),
        None,
        "deleting a target removes its check state"
    );
    let states: Vec<_> = store
        .list_states(&t)
        .await
        .expect("list states")
        .into_iter()
        .map(|(x, _)| x)
        .collect();
    assert_eq!(states, vec![keep.clone()]);
    assert!(store.load_state(&t, &keep).await.expect("load").is_some());
    assert!(
        !store.delete_target(&t, &id).await.expect("delete again"),
        "already gone"
    );

    // Re-created under the same id it starts afresh.
    let again = store
        .put_target(target(&t, "gone", "Back"), Expect::Absent)
        .await
        .expect("re-create");
    assert_eq!(again.version, 1);
}
