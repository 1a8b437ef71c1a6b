//! `infra/contract.json` is `resources::contract_json()`, and the resource script builds what it
//! says: the CDK app, the resource script and the drift check read that file, so it must never
//! lag the Rust contract.

use std::path::PathBuf;

use aws_sdk_sqs::types::QueueAttributeName;
use netmon_aws::clients::Clients;
use netmon_aws::resources::{self, DLQ_SUFFIX, QUEUES, SUBSCRIPTIONS, TABLES, TOPICS};
use netmon_testkit::emulator;
use serde_json::Value;

const REGENERATE: &str = "NETMON_WRITE_CONTRACT=1 cargo nextest run -p netmon-aws contract";

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/contract.json")
}

#[test]
fn contract_json_is_current() {
    let path = contract_path();
    let want = resources::contract_file_text();
    if std::env::var_os("NETMON_WRITE_CONTRACT").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        eprintln!("wrote {}", path.display());
        return;
    }
    let have = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path:?} ({e}); generate it with `{REGENERATE}`"));
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "infra/contract.json is stale: it differs from resources.rs from line {} \
             (file: {:?}, resources.rs: {:?}). Regenerate it with `{REGENERATE}` and commit it; \
             then run scripts/check-infra, which checks the SAM template against it.",
            line + 1,
            have.lines().nth(line).unwrap_or("<end of file>"),
            want.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

fn attribute(
    attrs: &std::collections::HashMap<QueueAttributeName, String>,
    name: QueueAttributeName,
) -> &str {
    attrs.get(&name).map(String::as_str).unwrap_or_default()
}

/// The resource script (run against moto, as every emulator test provisions) creates exactly
/// the topology the contract declares, with the deployed settings, and emits every variable.
#[tokio::test]
async fn resource_script_builds_the_declared_topology() {
    let prefix = emulator::unique_prefix("topology");
    let res = emulator::provision_as_deployed_async(prefix.clone()).await;
    let emu = emulator::start();
    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    let clients = Clients::new(&sdk);

    for t in TABLES {
        let name = format!("{prefix}-{}", t.suffix);
        assert_eq!(res.get(t.env), name);
        let table = clients
            .dynamodb
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .expect("describe table")
            .table
            .expect("table");
        let keys: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                (t.partition_key.to_owned(), "HASH".to_owned()),
                (t.sort_key.to_owned(), "RANGE".to_owned())
            ],
            "{name}"
        );
        for a in table.attribute_definitions() {
            assert_eq!(a.attribute_type().as_str(), "S", "{name} {a:?}");
        }
        let indexes: Vec<(String, Vec<String>, Option<String>)> = table
            .global_secondary_indexes()
            .iter()
            .map(|g| {
                (
                    g.index_name().unwrap_or_default().to_owned(),
                    g.key_schema()
                        .iter()
                        .map(|k| k.attribute_name().to_owned())
                        .collect(),
                    g.projection()
                        .and_then(|p| p.projection_type())
                        .map(|p| p.as_str().to_owned()),
                )
            })
            .collect();
        let declared: Vec<(String, Vec<String>, Option<String>)> = t
            .indexes
            .iter()
            .map(|i| {
                (
                    i.name.to_owned(),
                    vec![i.partition_key.to_owned(), i.sort_key.to_owned()],
                    Some("ALL".to_owned()),
                )
            })
            .collect();
        assert_eq!(indexes, declared, "{name}");
        let ttl = clients
            .dynamodb
            .describe_time_to_live()
            .table_name(&name)
            .send()
            .await
            .expect("describe ttl")
            .time_to_live_description
            .expect("ttl description");
        assert_eq!(ttl.attribute_name(), Some(t.ttl_attribute), "{name}");
    }

    for t in TOPICS {
        assert!(
            res.get(t.env).ends_with(&format!(":{prefix}-{}", t.suffix)),
            "{}",
            t.env
        );
    }

    let mut arns = std::collections::HashMap::new();
    for q in QUEUES {
        for (env, suffix, retention) in [
            (q.env, q.suffix.to_owned(), q.retention_secs),
            (q.dlq_env, q.dlq_suffix(), q.dlq_retention_secs),
        ] {
            let url = res.get(env);
            assert!(url.ends_with(&format!("/{prefix}-{suffix}")), "{env}={url}");
            let attrs = clients
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .expect("queue attributes")
                .attributes
                .unwrap_or_default();
            assert_eq!(
                attribute(&attrs, QueueAttributeName::MessageRetentionPeriod),
                retention.to_string(),
                "{suffix}"
            );
            let arn = attribute(&attrs, QueueAttributeName::QueueArn).to_owned();
            if suffix == q.suffix {
                let visibility = q.visibility_timeout_secs().expect("a consumer");
                assert_eq!(
                    attribute(&attrs, QueueAttributeName::VisibilityTimeout),
                    visibility.to_string(),
                    "{suffix}"
                );
                let redrive: Value =
                    serde_json::from_str(attribute(&attrs, QueueAttributeName::RedrivePolicy))
                        .expect("a redrive policy");
                assert!(
                    redrive["deadLetterTargetArn"]
                        .as_str()
                        .is_some_and(|a| a.ends_with(&format!(":{prefix}-{suffix}{DLQ_SUFFIX}"))),
                    "{suffix}: {redrive}"
                );
                assert_eq!(
                    redrive["maxReceiveCount"].to_string().trim_matches('"'),
                    q.max_receive_count.to_string(),
                    "{suffix}"
                );
            }
            arns.insert(arn, suffix);
        }
    }

    let mut found = Vec::new();
    for t in TOPICS {
        let subs = clients
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(res.get(t.env))
            .send()
            .await
            .expect("list subscriptions")
            .subscriptions
            .unwrap_or_default();
        for sub in subs {
            let attrs = clients
                .sns
                .get_subscription_attributes()
                .subscription_arn(sub.subscription_arn().unwrap_or_default())
                .send()
                .await
                .expect("subscription attributes")
                .attributes
                .unwrap_or_default();
            let queue = arns
                .get(sub.endpoint().unwrap_or_default())
                .cloned()
                .unwrap_or_else(|| format!("unknown endpoint {:?}", sub.endpoint()));
            let filter: Value = attrs
                .get("FilterPolicy")
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or(Value::Null);
            let raw = attrs.get("RawMessageDelivery").map(String::as_str) == Some("true");
            found.push((t.suffix.to_owned(), queue, filter, raw));
        }
    }
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut declared: Vec<(String, String, Value, bool)> = SUBSCRIPTIONS
        .iter()
        .map(|s| {
            (
                s.topic.to_owned(),
                s.queue.to_owned(),
                serde_json::json!({ resources::TYPE_ATTRIBUTE: s.event_types }),
                s.raw_message_delivery,
            )
        })
        .collect();
    declared.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(found, declared);
}
