//! `DynamoStateStore` on the emulator: every state-table behavioural suite, then what only this
//! adapter has (schedule shards, transaction atomicity at the item level, capacity refusal,
//! corrupt items), checked against the raw items.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use netmon_aws::dynamo::state::{
    DynamoStateStore, SCHEDULE_FULL_READ_EVERY, SHARD_BUDGET_BYTES, SHARDS,
};
use netmon_core::group::{Group, MAX_LEVEL};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::{CheckState, LocationState, Status};
use netmon_core::ports::{
    ChannelStore, Claim, Expect, HeartbeatStore, Idempotency, Outbox, PageRequest, PingKind,
    StateStore, StoreError, TargetStore, Versioned,
};
use netmon_core::target::{CheckSpec, HeartbeatCheck, Target};
use netmon_lambda_testkit::metrics::{CallCounter, CallSnapshot};
use netmon_testkit::suites::{self, fixtures};

type Item = HashMap<String, AttributeValue>;

struct Env {
    store: DynamoStateStore,
    client: Client,
    table: String,
}

async fn client() -> Client {
    let emu = netmon_testkit::emulator::start();
    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    Client::new(&sdk)
}

// Concurrency cases rely on each emulator request being atomic, as on DynamoDB: moto alone
// races (lost updates, torn transaction rollbacks), so scripts/emulator serves it through
// scripts/python/moto_serial.py.

async fn env_for(res: &netmon_testkit::emulator::Resources) -> Env {
    let client = client().await;
    let table = res.get("NETMON_STATE_TABLE").to_owned();
    Env {
        store: DynamoStateStore::new(client.clone(), table.clone()),
        client,
        table,
    }
}

/// The tables shared by every test process (cases isolate by unique tenant ids).
async fn shared() -> Env {
    env_for(&netmon_testkit::emulator::shared_async("dynamo").await).await
}

/// Tables of this process, for the shard cases: they check invariants of whole shard items,
/// which other processes' targets in shared shards must not disturb.
async fn shard_tables() -> Env {
    static RESOURCES: tokio::sync::OnceCell<netmon_testkit::emulator::Resources> =
        tokio::sync::OnceCell::const_new();
    let res = RESOURCES
        .get_or_init(|| {
            let prefix = netmon_testkit::emulator::unique_prefix("shards");
            netmon_testkit::emulator::provision_async(prefix, 2)
        })
        .await;
    env_for(res).await
}

/// Tables of our own, for cases that write items no other case may see.
async fn private(tag: &str) -> Env {
    let prefix = netmon_testkit::emulator::unique_prefix(tag);
    env_for(&netmon_testkit::emulator::provision_async(prefix, 2).await).await
}

impl Env {
    async fn raw_get(&self, pk: &str, sk: &str) -> Option<Item> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("raw get")
            .item
    }

    async fn raw_partition(&self, pk: &str) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("raw query");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    async fn raw_put(&self, item: Vec<(&str, AttributeValue)>) {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(
                item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
            .send()
            .await
            .expect("raw put");
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn str_of<'a>(item: &'a Item, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn num_of(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().expect("number"),
        other => panic!("{name}: {other:?}"),
    }
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| str_of(i, "sk").to_owned()).collect()
}

fn tid(id: &str) -> TargetId {
    TargetId::parse(id).expect("target id")
}

fn shard_sk(tenant: &TenantId, id: &str) -> String {
    format!("{:04}", DynamoStateStore::shard_of(tenant, &tid(id)))
}

fn heartbeat(tenant: &TenantId, id: &str, token: &str) -> Target {
    let mut t = fixtures::target(tenant, id, id);
    t.spec.check = CheckSpec::Heartbeat(HeartbeatCheck {
        period: netmon_core::HumanDuration::from_secs(3600),
        grace: netmon_core::HumanDuration::from_secs(60),
        token: Some(token.to_owned()),
    });
    t
}

/// Runs a store call again when the emulator answered 5xx. moto deep-copies a table for every
/// transaction and that copy races with concurrent requests (`dictionary changed size during
/// iteration`, HTTP 500); DynamoDB has no such failure, so only `Unavailable` is retried here.
async fn on_emulator<T, F, Fut>(f: F) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut last = None;
    for _ in 0..5 {
        match f().await {
            Err(StoreError::Unavailable(why)) => {
                last = Some(why);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
    Err(StoreError::Unavailable(last.unwrap_or_default()))
}

/// `n` ids of the form `{prefix}{i}` that share one schedule shard.
fn ids_in_one_shard(tenant: &TenantId, prefix: &str, n: usize) -> Vec<String> {
    let first = format!("{prefix}0");
    let shard = DynamoStateStore::shard_of(tenant, &tid(&first));
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|id| DynamoStateStore::shard_of(tenant, &tid(id)) == shard)
        .take(n)
        .collect()
}

/// Checks the shard's byte counter against its entries (DynamoDB sizes: name + value bytes).
fn assert_counter_matches(shard: &Item) {
    let entries: i64 = shard
        .iter()
        .filter(|(k, _)| k.starts_with("T#"))
        .map(|(k, v)| match v {
            AttributeValue::S(body) => (k.len() + body.len()) as i64,
            other => panic!("entry {k}: {other:?}"),
        })
        .sum();
    assert_eq!(
        num_of(shard, "bytes"),
        entries,
        "shard {} byte counter",
        str_of(shard, "sk")
    );
    assert!(entries <= SHARD_BUDGET_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_every_state_table_suite() {
    let env = shared().await;
    let store = env.store.clone();
    suites::run_state_table_suites(|| {
        let store = store.clone();
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_writes_no_item_and_known_event_ids_are_skipped() {
    let env = shared().await;
    let store = &env.store;
    let t = fixtures::tenant("atomic");
    let api = tid("api");
    let e1 = fixtures::event(&t, &fixtures::unique("ev"), fixtures::at(10));
    let open = fixtures::incident(&t, "api", "api-1", fixtures::at(10), None);
    let v1 = store
        .commit_state(
            &t,
            &api,
            Expect::Absent,
            &fixtures::state(Status::Down, fixtures::at(10)),
            std::slice::from_ref(&open),
            std::slice::from_ref(&e1),
        )
        .await
        .expect("first commit");
    assert_eq!(v1, 1);
    let partition = format!("T#{t}");
    let before = sks(&env.raw_partition(&partition).await);
    assert_eq!(before.len(), 2, "state + one open incident: {before:?}");
    assert!(before[0] == check_sk("api") && before[1].starts_with("OPEN#"));

    // Stale version: resolving the incident, a second incident and a new event all vanish.
    let lost = fixtures::event(&t, &fixtures::unique("ev"), fixtures::at(20));
    let mut resolved = open.clone();
    resolved.resolved_at = Some(fixtures::at(20));
    let err = store
        .commit_state(
            &t,
            &api,
            Expect::Version(5),
            &fixtures::state(Status::Up, fixtures::at(20)),
            &[
                resolved.clone(),
                fixtures::incident(&t, "api", "api-2", fixtures::at(20), None),
            ],
            std::slice::from_ref(&lost),
        )
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(sks(&env.raw_partition(&partition).await), before);
    assert!(
        env.raw_get(&format!("EVENT#{}", lost.id), "EVENT")
            .await
            .is_none()
    );

    // A stale version with an already-present event id is still a conflict, not a skip.
    let err = store
        .commit_state(
            &t,
            &api,
            Expect::Version(5),
            &fixtures::state(Status::Up, fixtures::at(20)),
            &[],
            std::slice::from_ref(&e1),
        )
        .await
        .expect_err("stale with a known id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // The current version with a known id and a new one: the known id is skipped (its first
    // body kept), the new one appended, the incident moves from OPEN# to CLOSED#.
    let mut e1_again = e1.clone();
    e1_again.time = fixtures::at(99);
    let e2 = fixtures::event(&t, &fixtures::unique("ev"), fixtures::at(30));
    let v2 = store
        .commit_state(
            &t,
            &api,
            Expect::Version(v1),
            &fixtures::state(Status::Up, fixtures::at(30)),
            std::slice::from_ref(&resolved),
            &[e1_again, e2.clone()],
        )
        .await
        .expect("commit with a known id");
    assert_eq!(v2, 2);
    let after = sks(&env.raw_partition(&partition).await);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after[0] == check_sk("api") && after[1].starts_with("CLOSED#"));
    let first = env
        .raw_get(&format!("EVENT#{}", e1.id), "EVENT")
        .await
        .expect("e1 item");
    assert!(
        str_of(&first, "body")
            .contains(&fixtures::at(10).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "the first body is kept"
    );
    assert!(
        env.raw_get(&format!("EVENT#{}", e2.id), "EVENT")
            .await
            .is_some()
    );

    // Publishing takes the event out of the sparse index and gives it a week's TTL.
    store
        .mark_published(std::slice::from_ref(&e2.id))
        .await
        .expect("mark");
    let published = env
        .raw_get(&format!("EVENT#{}", e2.id), "EVENT")
        .await
        .expect("published item stays");
    assert!(!published.contains_key("gsi1pk") && !published.contains_key("gsi1sk"));
    let ttl = num_of(&published, "ttl");
    let week = chrono::Utc::now().timestamp() + 7 * 86_400;
    assert!((week - 60..=week + 60).contains(&ttl), "ttl {ttl}");
    let pending: Vec<String> = store
        .pending(1_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| e.envelope.id)
        .filter(|id| *id == e1.id || *id == e2.id)
        .collect();
    assert_eq!(pending, vec![e1.id.clone()]);
    store.mark_published(&[e1.id]).await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_shards_follow_puts_updates_and_deletes() {
    let env = shard_tables().await;
    let store = &env.store;
    let t = fixtures::tenant("shard");
    let ids: Vec<String> = (0..300).map(|i| format!("t{i:03}")).collect();
    let results: Vec<Result<Target, StoreError>> = stream::iter(&ids)
        .map(|id| on_emulator(|| store.put_target(fixtures::target(&t, id, id), Expect::Absent)))
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        r.expect("create");
    }

    let mine = |all: Vec<Target>| -> BTreeMap<String, Target> {
        all.into_iter()
            .filter(|x| x.tenant == t)
            .map(|x| (x.id().to_string(), x))
            .collect()
    };
    let listed = mine(store.all_targets().await.expect("all targets"));
    assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), ids);
    let web = store
        .get_target(&t, &tid("t042"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(listed["t042"], web, "the shard copy equals the target item");

    // Each target sits in its own shard and nowhere else; 300 targets spread wide.
    let shards = env.raw_partition("SCHED").await;
    let mut homes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in &shards {
        assert_counter_matches(shard);
        let sk = str_of(shard, "sk");
        for name in shard.keys() {
            if let Some(id) = name.strip_prefix(&format!("T#{t}#")) {
                homes.entry(id.to_owned()).or_default().push(sk.to_owned());
            }
        }
    }
    assert_eq!(homes.len(), 300);
    for (id, at) in &homes {
        assert_eq!(at, &vec![shard_sk(&t, id)], "{id}");
    }
    let used: BTreeSet<_> = homes.values().flatten().collect();
    assert!(
        used.len() > 200,
        "300 targets over {SHARDS} shards use {} of them",
        used.len()
    );

    // An update is visible in the shard.
    let mut renamed = web.clone();
    renamed.spec.name = "renamed".into();
    let renamed = store
        .put_target(renamed, Expect::Version(1))
        .await
        .expect("update");
    let listed = mine(store.all_targets().await.expect("all targets"));
    assert_eq!(listed["t042"], renamed);
    assert_eq!(listed["t042"].version, 2);

    // A delete removes the target from its shard, with its state, ping and token index.
    let token = fixtures::unique("tok");
    let beat = store
        .put_target(heartbeat(&t, "beat", &token), Expect::Absent)
        .await
        .expect("heartbeat target");
    store
        .commit_state(
            &t,
            &tid("beat"),
            Expect::Absent,
            &fixtures::state(Status::Up, fixtures::at(0)),
            &[],
            &[],
        )
        .await
        .expect("state");
    store
        .record_ping(&fixtures::ping(
            &t,
            "beat",
            fixtures::at(5),
            PingKind::Success,
        ))
        .await
        .expect("ping");
    assert_eq!(
        store.find_by_heartbeat_token(&token).await.expect("find"),
        Some(beat)
    );
    assert!(store.delete_target(&t, &tid("beat")).await.expect("delete"));
    assert!(
        env.raw_get(&format!("TOKEN#{token}"), "TOKEN")
            .await
            .is_none()
    );
    assert!(
        env.raw_get(&format!("T#{t}"), &check_sk("beat"))
            .await
            .is_none()
    );
    assert!(env.raw_get("PING", &format!("{t}#beat")).await.is_none());
    let shard = env
        .raw_get("SCHED", &shard_sk(&t, "beat"))
        .await
        .expect("shard item");
    assert!(!shard.contains_key(&format!("T#{t}#beat")));
    assert_counter_matches(&shard);

    // Paging by id over the tenant partition still works next to the shards.
    let page = store
        .list_targets(
            &t,
            PageRequest {
                limit: 7,
                after: Some("t100".into()),
            },
        )
        .await
        .expect("page");
    let got: Vec<String> = page.items.iter().map(|x| x.id().to_string()).collect();
    assert_eq!(got, ids[101..108]);
    assert_eq!(page.next.as_deref(), Some("t107"));

    // Clean up: the shard cases share these tables.
    let deleted: Vec<Result<bool, StoreError>> = stream::iter(&ids)
        .map(|id| {
            let (t, id) = (t.clone(), tid(id));
            async move { on_emulator(|| store.delete_target(&t, &id)).await }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert!(deleted.into_iter().all(|r| r.expect("delete")));
    assert!(mine(store.all_targets().await.expect("all")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_shard_lose_nothing() {
    let env = shard_tables().await;
    let store = &env.store;
    let t = fixtures::tenant("busy");
    let ids = ids_in_one_shard(&t, "b", 12);
    let results: Vec<Result<Target, StoreError>> = stream::iter(&ids)
        .map(|id| on_emulator(|| store.put_target(fixtures::target(&t, id, id), Expect::Absent)))
        .buffer_unordered(12)
        .collect()
        .await;
    for r in results {
        r.expect("create");
    }
    let shard = env
        .raw_get("SCHED", &shard_sk(&t, &ids[0]))
        .await
        .expect("shard");
    let present: BTreeSet<String> = ids
        .iter()
        .filter(|id| shard.contains_key(&format!("T#{t}#{id}")))
        .cloned()
        .collect();
    assert_eq!(present.len(), ids.len(), "every entry survived");
    assert_counter_matches(&shard);
    for id in &ids {
        store.delete_target(&t, &tid(id)).await.expect("clean up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_shard_refuses_puts_and_stays_intact() {
    let env = shard_tables().await;
    let store = &env.store;
    let t = fixtures::tenant("full");
    let ids = ids_in_one_shard(&t, "big", 8);
    // ~60 KB each (an HTTP body), so six of them pass the 350 KB budget.
    let big = |id: &str| {
        let mut x = fixtures::target(&t, id, id);
        if let CheckSpec::Http(h) = &mut x.spec.check {
            h.body = Some("x".repeat(60_000));
        }
        x
    };
    let mut outcomes = Vec::new();
    for id in &ids {
        outcomes.push((id.clone(), store.put_target(big(id), Expect::Absent).await));
    }
    let shard = env
        .raw_get("SCHED", &shard_sk(&t, &ids[0]))
        .await
        .expect("shard");
    let small = store
        .put_target(fixtures::target(&t, &ids[7], "small"), Expect::Any)
        .await;
    let refused_alone = store
        .put_target(
            {
                let mut x = big("huge");
                if let CheckSpec::Http(h) = &mut x.spec.check {
                    h.body = Some("x".repeat(400_000));
                }
                x
            },
            Expect::Absent,
        )
        .await;
    let after_refusals = env
        .raw_get("SCHED", &shard_sk(&t, &ids[0]))
        .await
        .expect("shard");
    let gets = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(store.get_target(&t, &tid(id)).await.expect("get"));
        }
        v
    };
    // Clean up before asserting: a full shard would fail the other shard cases.
    for id in ids.iter().chain(["huge".to_owned()].iter()) {
        store.delete_target(&t, &tid(id)).await.expect("clean up");
    }

    let accepted = outcomes.iter().take_while(|(_, r)| r.is_ok()).count();
    assert_eq!(
        accepted, 5,
        "five ~60 KB targets fit the budget, a sixth does not"
    );
    for (id, r) in &outcomes[accepted..] {
        match r {
            Err(StoreError::Corrupt(msg)) => {
                assert!(
                    msg.contains("is full") && msg.contains("budget"),
                    "{id}: {msg}"
                )
            }
            other => panic!("{id}: expected a refusal, got {other:?}"),
        }
    }
    for (i, got) in gets.iter().enumerate().take(7) {
        assert_eq!(
            got.is_some(),
            i < accepted,
            "{} stored iff accepted",
            ids[i]
        );
    }
    assert_counter_matches(&shard);
    assert!(num_of(&shard, "bytes") > SHARD_BUDGET_BYTES - 70_000);
    // Small targets still fit in what is left.
    assert_eq!(small.expect("a small target fits").spec.name, "small");
    match refused_alone {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("at most"), "{msg}"),
        other => panic!("a 400 KB target must be refused: {other:?}"),
    }
    assert_counter_matches(&after_refusals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_tokens_are_unique_across_tenants() {
    let env = shared().await;
    let store = &env.store;
    let (a, b) = (fixtures::tenant("toka"), fixtures::tenant("tokb"));
    let token = fixtures::unique("tok");
    let first = store
        .put_target(heartbeat(&a, "job", &token), Expect::Absent)
        .await
        .expect("first");
    let err = store
        .put_target(heartbeat(&b, "job", &token), Expect::Absent)
        .await
        .expect_err("same token elsewhere");
    assert!(
        matches!(&err, StoreError::Conflict(m) if !m.contains(&token)),
        "{err:?}"
    );
    assert_eq!(store.get_target(&b, &tid("job")).await.expect("get"), None);
    assert_eq!(
        store.find_by_heartbeat_token(&token).await.expect("find"),
        Some(first.clone())
    );
    // Re-putting the same target with its own token is fine.
    let again = store
        .put_target(first.clone(), Expect::Version(1))
        .await
        .expect("same token, same target");
    assert_eq!(again.version, 2);
    store
        .delete_target(&a, &tid("job"))
        .await
        .expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_items_are_reported_as_corrupt() {
    let env = private("corrupt").await;
    let store = &env.store;
    let t = TenantId::parse("acme").expect("tenant");
    let pk = format!("T#{t}");
    let n = |v: &str| AttributeValue::N(v.to_owned());
    env.raw_put(vec![
        ("pk", s(&pk)),
        ("sk", s("TARGET#web")),
        ("version", n("1")),
        ("body", s("{not json")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s(&pk)),
        ("sk", s("TARGET#api")),
        ("version", s("one")),
        ("body", s("{}")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s(&pk)),
        ("sk", s("STATE#web")),
        ("body", s("{}")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s(&pk)),
        ("sk", s("CHANNEL#ops")),
        ("version", n("1")),
        ("body", s("[]")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s(&pk)),
        ("sk", s("OPEN#2026-01-01T00:00:00.000000000Z#x")),
        ("body", s("{\"tenant\":\"acme\"}")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s("SCHED")),
        ("sk", s("0007")),
        ("bytes", n("10")),
        ("T#acme#web", s("nope")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s("EVENT#bad")),
        ("sk", s("EVENT")),
        ("body", s("{\"id\":1}")),
        ("created_at", s("2026-01-01T00:00:00Z")),
        ("gsi1pk", s("OUTBOX")),
        ("gsi1sk", s("2026-01-01T00:00:00Z#0000#bad")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s("IDEM#k")),
        ("sk", s("IDEM")),
        ("status", s("paused")),
        ("expires_at", n("99999999999999")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s("PING")),
        ("sk", s("acme#cron")),
        ("tenant", s("acme")),
        ("target", s("cron")),
        ("at", s("last tuesday")),
        ("kind", s("success")),
    ])
    .await;
    env.raw_put(vec![
        ("pk", s("TOKEN#secret-token")),
        ("sk", s("TOKEN")),
        ("tenant", s("not a tenant")),
        ("target", s("web")),
    ])
    .await;

    let corrupt = |what: &str, r: Result<(), StoreError>| match r {
        Err(StoreError::Corrupt(msg)) => {
            assert!(
                !msg.contains("secret-token"),
                "{what}: the token leaked: {msg}"
            )
        }
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    };
    corrupt(
        "get_target bad body",
        store.get_target(&t, &tid("web")).await.map(drop),
    );
    corrupt(
        "get_target bad version",
        store.get_target(&t, &tid("api")).await.map(drop),
    );
    corrupt(
        "list_targets",
        store
            .list_targets(&t, PageRequest::default())
            .await
            .map(drop),
    );
    corrupt(
        "load_state without version",
        store.load_state(&t, &tid("web")).await.map(drop),
    );
    corrupt("list_states", store.list_states(&t).await.map(drop));
    corrupt("list_channels", store.list_channels(&t).await.map(drop));
    corrupt(
        "list_incidents",
        store.list_incidents(&t, 10).await.map(drop),
    );
    // The scheduler's read skips what it cannot decode rather than stopping every tenant
    // (one_unreadable_schedule_entry_does_not_hide_the_other_targets).
    store
        .all_targets()
        .await
        .expect("all_targets skips corrupt entries");
    corrupt("pending", store.pending(10).await.map(drop));
    corrupt(
        "claim",
        store
            .claim("k", chrono::Utc::now(), chrono::Duration::seconds(60))
            .await
            .map(drop),
    );
    corrupt("last_pings", store.last_pings().await.map(drop));
    corrupt(
        "find_by_heartbeat_token",
        store
            .find_by_heartbeat_token("secret-token")
            .await
            .map(drop),
    );

    // A claim on a healthy key next to the bad one is unaffected.
    assert_eq!(
        store
            .claim("fine", chrono::Utc::now(), chrono::Duration::seconds(60))
            .await
            .expect("claim"),
        Claim::Acquired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_windows_and_replies_have_the_documented_items() {
    use netmon_core::ports::{ApiKeyStore, MaintenanceStore, ReplyStore};
    let env = shared().await;
    let store = &env.store;
    let t = fixtures::tenant("items");

    let key = fixtures::api_key(&t, netmon_core::apikey::Role::Tenant, "ci", fixtures::at(1));
    store.create_key(&key).await.expect("create key");
    store
        .revoke_key(&key.id, fixtures::at(7))
        .await
        .expect("revoke");
    let item = env.raw_get("APIKEY", &key.id).await.expect("key item");
    assert_eq!(str_of(&item, "tenant"), t.as_str());
    assert_eq!(
        str_of(&item, "revoked_at"),
        "2026-11-28T10:00:07.000000000Z"
    );
    assert!(
        !str_of(&item, "body").contains("revoked_at"),
        "revocation lives in its own attribute"
    );

    let w = fixtures::window(&t, "upgrade", fixtures::at(0), fixtures::at(60), &[]);
    store.put_window(w, Expect::Absent).await.expect("window");
    let item = env
        .raw_get(&format!("T#{t}"), "MAINT#upgrade")
        .await
        .expect("window item");
    assert_eq!(num_of(&item, "version"), 1);

    let reply = netmon_core::rpc::RpcReply {
        correlation_id: fixtures::unique("corr"),
        tenant: t.clone(),
        at: fixtures::at(3),
        outcome: netmon_core::rpc::RpcOutcome::Failure {
            message: "no result".into(),
        },
    };
    store
        .put_reply(&reply, fixtures::at(600))
        .await
        .expect("reply");
    let item = env
        .raw_get(&format!("RPC#{}", reply.correlation_id), "RPC")
        .await
        .expect("reply item");
    assert_eq!(num_of(&item, "ttl"), fixtures::at(600).timestamp());
    // An id that could not be a key is simply unknown, not a failed request.
    assert_eq!(store.get_reply("not a key#").await.expect("get"), None);
}

/// A schedule entry that cannot be read (corrupt, or written by a newer version during a
/// deploy) is skipped with an error log; every other target is still planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_schedule_entry_does_not_hide_the_other_targets() {
    let env = private("tolerant").await;
    let t = fixtures::tenant("tolerant");
    for id in ["a", "b"] {
        env.store
            .put_target(fixtures::target(&t, id, id), Expect::Absent)
            .await
            .expect("create");
    }
    env.client
        .update_item()
        .table_name(&env.table)
        .key("pk", s("SCHED"))
        .key("sk", s(&shard_sk(&t, "a")))
        .update_expression("SET #bad = :bad")
        .expression_attribute_names("#bad", format!("T#{t}#zz-newer"))
        .expression_attribute_values(":bad", s(r#"{"spec":{"id":"zz-newer","future_field":1}}"#))
        .send()
        .await
        .expect("raw update");
    let ids: BTreeSet<String> = env
        .store
        .all_targets()
        .await
        .expect("the other targets are read")
        .into_iter()
        .filter(|x| x.tenant == t)
        .map(|x| x.id().to_string())
        .collect();
    assert_eq!(ids, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
}

/// A schedule entry written straight into its shard, without the stripe counter's bump.
async fn write_behind_the_counters(env: &Env, t: &TenantId, id: &str) {
    let body = serde_json::to_string(&Target {
        version: 1,
        ..fixtures::target(t, id, id)
    })
    .expect("encode");
    env.client
        .update_item()
        .table_name(&env.table)
        .key("pk", s("SCHED"))
        .key("sk", s(&shard_sk(t, id)))
        .update_expression("SET #e = :e")
        .expression_attribute_names("#e", format!("T#{t}#{id}"))
        .expression_attribute_values(":e", s(&body))
        .send()
        .await
        .expect("raw shard update");
}

/// The scheduler's reads: a second visit reads the stripe counters and nothing else; a put,
/// an update and a delete made through another store instance (the api's) are each seen on the
/// next visit, for the read units of their stripes only; an entry written without a counter
/// bump (a writer of an older release) is seen within `SCHEDULE_FULL_READ_EVERY` visits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_is_reread_only_where_targets_changed() {
    let env = private("sched-cache").await;
    let t = fixtures::tenant("sched-cache");
    let ids: Vec<String> = (0..200).map(|i| format!("c{i:03}")).collect();
    let results: Vec<Result<Target, StoreError>> = stream::iter(&ids)
        .map(|id| {
            on_emulator(|| {
                env.store
                    .put_target(fixtures::target(&t, id, id), Expect::Absent)
            })
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        r.expect("create");
    }
    let (scheduler, counter) = counted(&env).await;
    let visit = || async {
        let before = counter.snapshot();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        scheduler
            .visit_targets(&mut |x| {
                seen.insert(x.id().to_string(), x.spec.name.clone());
            })
            .await
            .expect("visit");
        let rru = counter
            .snapshot()
            .since(&before)
            .billed_for("DynamoDB")
            .read_half_units
            .div_ceil(2);
        (seen, rru)
    };
    // A cold start streams and measures; the next visit reads everything to hold it.
    let (first, stream_rru) = visit().await;
    assert_eq!(first.keys().cloned().collect::<Vec<_>>(), ids);
    let (second, full_rru) = visit().await;
    assert_eq!(second, first);
    let (third, steady_rru) = visit().await;
    assert_eq!(third, first);
    eprintln!(
        "200 targets: streamed {stream_rru} RRU, read to hold {full_rru} RRU, unchanged {steady_rru} RRU"
    );
    assert!(stream_rru >= 10, "a read of 200 targets: {stream_rru} RRU");
    assert!(
        steady_rru <= 1,
        "an unchanged schedule reads only the counters: {steady_rru} RRU"
    );

    env.store
        .put_target(fixtures::target(&t, "c007", "renamed"), Expect::Any)
        .await
        .expect("update");
    env.store
        .delete_target(&t, &tid("c100"))
        .await
        .expect("delete");
    env.store
        .put_target(fixtures::target(&t, "new", "new"), Expect::Absent)
        .await
        .expect("create");
    let (changed, changed_rru) = visit().await;
    let mut expected = first.clone();
    expected.insert("c007".into(), "renamed".into());
    expected.remove("c100");
    expected.insert("new".into(), "new".into());
    assert_eq!(changed, expected, "every change is seen on the next visit");
    eprintln!("after 3 changes: {changed_rru} RRU");
    assert!(
        changed_rru < full_rru,
        "{changed_rru} RRU, a full read {full_rru}"
    );
    // Stripes read because their counter moved are read once more, then left alone.
    let (settling, _) = visit().await;
    assert_eq!(settling, expected);
    let (settled, settled_rru) = visit().await;
    assert_eq!(settled, expected);
    assert!(settled_rru <= 1, "settled: {settled_rru} RRU");

    // A transaction's counter visible a moment before its shard: the visit that reads the new
    // counter with the old shard is followed by one that rereads the stripe.
    let stripe = shard_sk(&t, "skewed").parse::<u32>().expect("shard number") / 16;
    env.client
        .update_item()
        .table_name(&env.table)
        .key("pk", s("SCHEDV"))
        .key("sk", s(&format!("{stripe:02}")))
        .update_expression("ADD #c :one")
        .expression_attribute_names("#c", "changes")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("raw counter bump");
    let (before_shard, _) = visit().await;
    assert!(!before_shard.contains_key("skewed"));
    write_behind_the_counters(&env, &t, "skewed").await;
    let (after_shard, _) = visit().await;
    assert!(
        after_shard.contains_key("skewed"),
        "a stripe read with a counter that had just moved is read again"
    );
    let (_, steady_again) = visit().await;
    assert!(steady_again <= 1, "then settled: {steady_again} RRU");

    // Written behind the counters' back: found by the periodic full read, and no later.
    write_behind_the_counters(&env, &t, "sneaky").await;
    let mut visits = 0;
    loop {
        visits += 1;
        let (seen, _) = visit().await;
        if seen.contains_key("sneaky") {
            break;
        }
        assert!(
            visits < SCHEDULE_FULL_READ_EVERY,
            "not seen after {visits} visits"
        );
    }
    eprintln!("an unbumped change was seen after {visits} visits");
    assert!(
        visits > 1,
        "an unbumped change is not seen by the next visit: the cache is used"
    );
}

/// A claim whose first attempt landed but whose answer was lost (a 500 after the write; the
/// SDK retries) is still ours: without the claim's `owner`, the retry would find "in progress"
/// and the work would wait out its own lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_retried_after_a_lost_answer_is_acquired() {
    use netmon_lambda_testkit::faults::FaultInjector;
    let env = shared().await;
    let emu = netmon_testkit::emulator::start();
    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    // Seed 5 at 50 %: the first attempt loses its answer, the second passes.
    let faults = FaultInjector::new(5, 500);
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(faults.interceptor())
            .build(),
    );
    let store = DynamoStateStore::new(client, env.table.clone());
    let key = fixtures::unique("lost-answer");
    let claim = store
        .claim(&key, chrono::Utc::now(), chrono::Duration::minutes(2))
        .await
        .expect("claim");
    assert_eq!(
        faults.counts(),
        (2, 0, 1),
        "the first attempt's answer was lost"
    );
    assert_eq!(claim, Claim::Acquired);
    // Someone else's claim is still refused.
    assert_eq!(
        env.store
            .claim(&key, chrono::Utc::now(), chrono::Duration::minutes(2))
            .await
            .expect("claim"),
        Claim::InProgress
    );
}

// ---- check state keys: groups as ranges, and the move from `STATE#` ----

/// The documented key of a check state: its target's group at the finest level, 4 hex digits.
fn check_sk(id: &str) -> String {
    let index = Group::of(&tid(id), MAX_LEVEL).index;
    format!("CHECK#{index:04x}#{id}")
}

/// A state of about the size deployed ones have (~300 B): two locations.
fn sized_state(since: i64) -> CheckState {
    let mut state = fixtures::state(Status::Up, fixtures::at(since));
    for location in ["eu-west-1", "us-east-1"] {
        state.locations.insert(
            location.to_owned(),
            LocationState {
                down: false,
                consecutive_failures: 0,
                consecutive_successes: 3,
                failing_since: None,
                watermark: fixtures::at(since),
            },
        );
    }
    state
}

/// A state item as an older release wrote it, at `STATE#<target>`.
async fn put_legacy(env: &Env, t: &TenantId, id: &str, version: u64, state: &CheckState) {
    env.raw_put(vec![
        ("pk", s(&format!("T#{t}"))),
        ("sk", s(&format!("STATE#{id}"))),
        ("version", AttributeValue::N(version.to_string())),
        (
            "body",
            s(&serde_json::to_string(state).expect("state json")),
        ),
    ])
    .await;
}

/// The same table through a client whose requests are counted and billed.
async fn counted(env: &Env) -> (DynamoStateStore, CallCounter) {
    let emu = netmon_testkit::emulator::start();
    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    let counter = CallCounter::new();
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(counter.interceptor())
            .build(),
    );
    (DynamoStateStore::new(client, env.table.clone()), counter)
}

/// `n` ids of the form `{prefix}{i}` in one group of `level`.
fn ids_in_one_group(prefix: &str, level: u8, n: usize) -> (Group, Vec<String>) {
    let group = Group::of(&tid(&format!("{prefix}0")), level);
    let ids = (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|id| Group::of(&tid(id), level) == group)
        .take(n)
        .collect();
    (group, ids)
}

/// Commits a first state (1 location) for each of `ids`, 16 at a time.
async fn commit_fresh<'a>(env: &Env, t: &TenantId, ids: impl IntoIterator<Item = &'a String>) {
    let state = sized_state(1);
    let commit = |id: String| {
        let (store, state) = (&env.store, &state);
        async move {
            let target = tid(&id);
            on_emulator(|| store.commit_state(t, &target, Expect::Absent, state, &[], &[]))
                .await
                .expect("commit");
        }
    };
    stream::iter(ids.into_iter().cloned())
        .for_each_concurrent(16, commit)
        .await;
}

/// A job of 50 targets whose group holds only them, in a tenant of 250 more: the group read is
/// billed on the 50 states' bytes, the read by key 1 unit per state. Measured: 4 RRU (about
/// 15 KB of states) against 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_read_is_billed_on_its_states_bytes() {
    let env = shared().await;
    let t = fixtures::tenant("grouprru");
    let (group, ids) = ids_in_one_group("job-", 3, 50);
    let others: Vec<String> = (0..)
        .map(|i| format!("other-{i}"))
        .filter(|id| Group::of(&tid(id), 3) != group)
        .take(250)
        .collect();
    commit_fresh(&env, &t, ids.iter().chain(&others)).await;
    let item = env
        .raw_get(&format!("T#{t}"), &check_sk(&ids[0]))
        .await
        .expect("state item");
    let size = netmon_lambda_testkit::billing::item_size(&item);
    assert!((250..=400).contains(&size), "a state item is {size} B");

    let (store, counter) = counted(&env).await;
    let asked: Vec<TargetId> = ids.iter().map(|id| tid(id)).collect();
    let rru = |before: &CallSnapshot| {
        counter
            .snapshot()
            .since(before)
            .billed_for("DynamoDB")
            .read_half_units
            .div_ceil(2)
    };
    let before = counter.snapshot();
    let by_group = store
        .load_group_states(&t, group, &asked)
        .await
        .expect("group read");
    let group_rru = rru(&before);
    let before = counter.snapshot();
    let by_key = store.load_states(&t, &asked).await.expect("key read");
    let key_rru = rru(&before);
    eprintln!("50 states of {size} B: group read {group_rru} RRU, load_states {key_rru} RRU");
    assert_eq!(by_group.len(), 50);
    let mut by_group: Vec<_> = by_group
        .into_iter()
        .map(|(id, v)| (id, v.version))
        .collect();
    let mut by_key: Vec<_> = by_key.into_iter().map(|(id, v)| (id, v.version)).collect();
    by_group.sort();
    by_key.sort();
    assert_eq!(by_group, by_key);
    assert!(group_rru <= 5, "group read: {group_rru} RRU");
    assert_eq!(key_rru, 50);
}

/// A job holding a third of its group, cut in finest-group order as the scheduler cuts a group
/// too large for one job, reads about a third of the group's states, not all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_holding_part_of_its_group_reads_about_its_part() {
    let env = shared().await;
    let t = fixtures::tenant("grouppart");
    let (group, mut ids) = ids_in_one_group("part-", 0, 300);
    ids.sort_by_key(|id| (Group::of(&tid(id), MAX_LEVEL).index, id.clone()));
    commit_fresh(&env, &t, &ids).await;
    let (store, counter) = counted(&env).await;
    let rru = |ask: &[String]| {
        let (store, counter, t) = (&store, &counter, &t);
        let ask: Vec<TargetId> = ask.iter().map(|id| tid(id)).collect();
        async move {
            let before = counter.snapshot();
            let got = store
                .load_group_states(t, group, &ask)
                .await
                .expect("group read");
            assert_eq!(got.len(), ask.len());
            counter
                .snapshot()
                .since(&before)
                .billed_for("DynamoDB")
                .read_half_units
                .div_ceil(2)
        }
    };
    let whole = rru(&ids).await;
    let part = rru(&ids[100..200]).await;
    eprintln!("group of 300: whole {whole} RRU, a third {part} RRU");
    assert!(
        part * 5 <= whole * 2,
        "a third read {part} RRU, the whole {whole}"
    );
}

/// A state an older release wrote is read, moved to its new key by whichever read finds it
/// (by target, by batch, by group, or a last-writer-wins commit's version read), then
/// committed against at its version; a deleted target loses both keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_state_is_read_moved_and_committed_against() {
    let env = shared().await;
    let t = fixtures::tenant("legacy");
    let pk = format!("T#{t}");
    let old = sized_state(5);
    for (i, id) in ["one", "batch", "grouped", "any", "listed"]
        .iter()
        .enumerate()
    {
        put_legacy(&env, &t, id, 3 + i as u64, &old).await;
    }
    let moved = |id: &'static str| {
        let env = &env;
        let pk = pk.clone();
        async move {
            let new = env.raw_get(&pk, &check_sk(id)).await;
            let legacy = env.raw_get(&pk, &format!("STATE#{id}")).await;
            (new.map(|i| num_of(&i, "version")), legacy.is_some())
        }
    };
    let store = &env.store;

    let one = store.load_state(&t, &tid("one")).await.expect("load");
    assert_eq!(one.map(|v| (v.value, v.version)), Some((old.clone(), 3)));
    assert_eq!(moved("one").await, (Some(3), false));
    let v = store
        .commit_state(
            &t,
            &tid("one"),
            Expect::Version(3),
            &sized_state(9),
            &[],
            &[],
        )
        .await
        .expect("commit at the moved version");
    assert_eq!(v, 4);
    assert_eq!(moved("one").await, (Some(4), false));

    let batch = store
        .load_states(&t, &[tid("batch"), tid("nothing")])
        .await
        .expect("load states");
    assert_eq!(
        batch,
        vec![(
            tid("batch"),
            Versioned {
                value: old.clone(),
                version: 4
            }
        )]
    );
    assert_eq!(moved("batch").await, (Some(4), false));

    let group = Group::of(&tid("grouped"), 2);
    let grouped = store
        .load_group_states(&t, group, &[tid("grouped")])
        .await
        .expect("group read");
    assert_eq!(
        grouped,
        vec![(
            tid("grouped"),
            Versioned {
                value: old.clone(),
                version: 5
            }
        )]
    );
    assert_eq!(moved("grouped").await, (Some(5), false));

    let v = store
        .commit_state(&t, &tid("any"), Expect::Any, &sized_state(9), &[], &[])
        .await
        .expect("last writer wins");
    assert_eq!(v, 7, "counts on from the legacy version");
    assert_eq!(moved("any").await, (Some(7), false));

    // Listing reads both layouts and moves nothing.
    let listed: Vec<(String, u64)> = store
        .list_states(&t)
        .await
        .expect("list")
        .into_iter()
        .map(|(id, v)| (id.to_string(), v.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("any", 7),
            ("batch", 4),
            ("grouped", 5),
            ("listed", 7),
            ("one", 4)
        ]
        .map(|(id, v)| (id.to_owned(), v))
    );
    assert_eq!(moved("listed").await, (None, true));

    // Deleting a target removes its state under either key.
    assert!(
        !store
            .delete_target(&t, &tid("listed"))
            .await
            .expect("delete")
    );
    assert!(!store.delete_target(&t, &tid("one")).await.expect("delete"));
    assert_eq!(moved("listed").await, (None, false));
    assert_eq!(moved("one").await, (None, false));
}

/// A first state for a target whose state is still at its legacy key would hide it: refused,
/// and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_state_is_refused_while_a_legacy_one_exists() {
    let env = shared().await;
    let t = fixtures::tenant("shadow");
    put_legacy(&env, &t, "web", 2, &sized_state(5)).await;
    let err = env
        .store
        .commit_state(&t, &tid("web"), Expect::Absent, &sized_state(9), &[], &[])
        .await
        .expect_err("a legacy state exists");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let items = env.raw_partition(&format!("T#{t}")).await;
    assert_eq!(sks(&items), ["STATE#web"]);
    assert_eq!(num_of(&items[0], "version"), 2);
    // The alerter's re-read moves it; its version then commits.
    let v = env.store.load_state(&t, &tid("web")).await.expect("load");
    assert_eq!(v.map(|v| v.version), Some(2));
    let v = env
        .store
        .commit_state(
            &t,
            &tid("web"),
            Expect::Version(2),
            &sized_state(9),
            &[],
            &[],
        )
        .await
        .expect("commit");
    assert_eq!(v, 3);
    assert_eq!(
        sks(&env.raw_partition(&format!("T#{t}")).await),
        [check_sk("web")]
    );
}

/// Readers that find the same legacy states at once, and a writer committing as soon as its
/// read has moved one: every state ends at its new key, at the writer's version, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_movers_lose_nothing() {
    let env = shared().await;
    let t = fixtures::tenant("movers");
    let ids: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    let targets: Vec<TargetId> = ids.iter().map(|id| tid(id)).collect();
    for id in &ids {
        put_legacy(&env, &t, id, 10, &sized_state(5)).await;
    }
    let store = &env.store;
    let whole = Group::of(&targets[0], 0);
    let readers = (0..4).map(|n| {
        let (t, targets) = (&t, &targets);
        async move {
            let got = if n % 2 == 0 {
                on_emulator(|| store.load_states(t, targets)).await
            } else {
                on_emulator(|| store.load_group_states(t, whole, targets)).await
            };
            let got = got.expect("read");
            assert_eq!(got.len(), targets.len(), "reader {n} sees every state");
            assert!(got.iter().all(|(_, v)| v.version == 10 || v.version == 11));
        }
    });
    let next = sized_state(9);
    let writer = async {
        for target in &targets {
            let v = on_emulator(|| store.load_state(&t, target))
                .await
                .expect("load")
                .expect("a state");
            on_emulator(|| {
                store.commit_state(&t, target, Expect::Version(v.version), &next, &[], &[])
            })
            .await
            .expect("commit after the move");
        }
    };
    futures::join!(futures::future::join_all(readers), writer);
    let items = env.raw_partition(&format!("T#{t}")).await;
    let mut want: Vec<String> = ids.iter().map(|id| check_sk(id)).collect();
    want.sort();
    assert_eq!(
        sks(&items),
        want,
        "every state at its new key, none left behind"
    );
    assert!(items.iter().all(|i| num_of(i, "version") == 11));
}

/// One state that does not decode, asked for or only in the range, leaves the group's other
/// states readable (the batch goes on; that target's commit is refused and its re-read fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_state_does_not_hide_the_rest_of_its_group() {
    let env = shared().await;
    let t = fixtures::tenant("badgroup");
    let (group, ids) = ids_in_one_group("b", 0, 4);
    for id in &ids[..2] {
        env.store
            .commit_state(&t, &tid(id), Expect::Absent, &sized_state(1), &[], &[])
            .await
            .expect("commit");
    }
    for id in &ids[2..] {
        env.raw_put(vec![
            ("pk", s(&format!("T#{t}"))),
            ("sk", s(&check_sk(id))),
            ("body", s("{not json")),
        ])
        .await;
    }
    let asked: Vec<TargetId> = ids[..3].iter().map(|id| tid(id)).collect();
    let mut got: Vec<String> = env
        .store
        .load_group_states(&t, group, &asked)
        .await
        .expect("group read")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    got.sort();
    let mut want = ids[..2].to_vec();
    want.sort();
    assert_eq!(got, want);
    let err = env
        .store
        .commit_state(&t, &tid(&ids[2]), Expect::Absent, &sized_state(2), &[], &[])
        .await
        .expect_err("the unreadable item is still there");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = env
        .store
        .load_state(&t, &tid(&ids[2]))
        .await
        .expect_err("re-read");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}
