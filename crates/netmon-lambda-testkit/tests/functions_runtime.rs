//! Each function's compiled binary under the Lambda Runtime API emulator, with its sample event
//! from `events/lambda/` and the environment `infra/template.yaml` gives it, against the
//! emulator: proves the real `main.rs` wiring (env config, clients, runtime loop, response
//! shape), not just the library code the pipeline tests run in-process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use netmon_aws::clients::Clients;
use netmon_aws::dynamo::history::DynamoHistoryStore;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::*;
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::ports::{ChannelStore, Expect, HistoryStore, TargetStore};
use netmon_core::target::{Target, TargetSpec};
use netmon_core::{TargetId, TenantId};
use netmon_lambda_testkit::cargo_build::cargo_build_all;
use netmon_lambda_testkit::runner::queue_depth;
use netmon_lambda_testkit::runtime_api::{Invocation, Phase, RuntimeApi};
use netmon_testkit::emulator;
use netmon_testkit::servers::WebhookReceiver;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Every function binary, built by one cargo run. `--example echo_lambda` makes cargo resolve
/// features as `cargo test --workspace` does (dev-dependencies active), so the libraries the
/// tests already built are reused and only the six binaries are compiled and linked.
fn binaries() -> BTreeMap<String, PathBuf> {
    cargo_build_all(&["--workspace", "--bins", "--example", "echo_lambda"])
        .into_iter()
        .filter_map(|(name, path)| Some((name.strip_prefix("netmon-fn-")?.to_owned(), path)))
        .collect()
}

fn sample(name: &str) -> Value {
    let path = emulator::repo_root().join(format!("events/lambda/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("sample event")
}

/// The sample with its results dated now: the alerter ignores results too old to change state.
fn fresh(mut event: Value) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for record in event["Records"].as_array_mut().into_iter().flatten() {
        let Some(body) = record["body"].as_str() else {
            continue;
        };
        let mut env: Value = serde_json::from_str(body).expect("sample body");
        for r in env["payload"]["results"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            r["started_at"] = json!(now);
        }
        record["body"] = json!(env.to_string());
    }
    event
}

/// The sample with one more record whose body is not JSON.
fn with_poison(mut event: Value, id: &str) -> Value {
    let mut poison = event["Records"][0].clone();
    poison["messageId"] = json!(id);
    poison["body"] = json!("{not json");
    poison["attributes"]["ApproximateReceiveCount"] = json!("2");
    event["Records"].as_array_mut().unwrap().push(poison);
    event
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures in {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// What the deployment sets on each function: the variables the resource contract gives it, with
/// the emulator's resources and settings for local servers.
fn function_env(res: &emulator::Resources, function: &str) -> Vec<(String, String)> {
    let emu = emulator::start();
    let mut env = vec![
        ("AWS_ENDPOINT_URL".to_owned(), emu.endpoint.clone()),
        ("AWS_REGION".to_owned(), emu.region.clone()),
        (
            "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
            format!("netmon-test-{function}"),
        ),
    ];
    let spec = Function::named(function).unwrap_or_else(|| panic!("unknown function {function}"));
    env.extend(spec.env.iter().map(|&name| {
        let value = match name {
            ENV_LOCATION => "emulator",
            // Local servers only: the prober's sample targets and the webhook receiver.
            ENV_ALLOW_PRIVATE => "true",
            ENV_ALLOW_LINK_LOCAL => "false",
            // Optional deployment parameters, left empty as a stack deployed without them.
            ENV_SES_IDENTITY | ENV_PUBLIC_URL | ENV_SESSION_SECRET => "",
            resource => res.get(resource),
        };
        (name.to_owned(), value.to_owned())
    }));
    env
}

async fn invoke(
    bin: &BTreeMap<String, PathBuf>,
    res: &emulator::Resources,
    function: &str,
    event: Value,
) -> Value {
    let api = RuntimeApi::start().await;
    let env = function_env(res, function);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let invoked = api
        .invoke_binary(&bin[function], &env, event, TIMEOUT)
        .await;
    // Logs are JSON lines on stdout.
    for line in invoked.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "{function}: log line is not JSON: {line}");
    }
    invoked.response().clone()
}

/// Everything in a queue, deleted, as JSON.
async fn take(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return out;
        }
        for m in got {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("JSON body"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_answers_its_sample_event() {
    let bin = tokio::task::spawn_blocking(binaries).await.unwrap();
    assert_eq!(
        bin.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "alerter",
            "api",
            "notifier",
            "prober",
            "recorder",
            "scheduler"
        ]
    );
    let res = emulator::provision_async(emulator::unique_prefix("runtime"), 2).await;
    let emu = emulator::start();
    let harness =
        Clients::new(&netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await);
    let store = DynamoStateStore::new(
        harness.dynamodb.clone(),
        res.get(ENV_STATE_TABLE).to_owned(),
    );
    let tenant = TenantId::default_tenant();

    // scheduler: plans the coming minute for the polled target and reports the heartbeat that
    // never pinged, then skips the same tick.
    let now = chrono::Utc::now();
    let created = chrono::DateTime::parse_from_rfc3339("2026-03-14T09:00:00Z")
        .unwrap()
        .to_utc();
    for (spec, created_at) in [
        (
            json!({"id": "web", "http": {"url": "http://127.0.0.1:9/"}, "interval": "1m"}),
            now,
        ),
        (
            json!({"id": "backup", "heartbeat": {"period": "1m", "grace": "1m"}}),
            created,
        ),
    ] {
        let spec: TargetSpec = serde_json::from_value(spec).unwrap();
        store
            .put_target(
                Target {
                    tenant: tenant.clone(),
                    spec,
                    version: 0,
                    created_at,
                    updated_at: created_at,
                },
                Expect::Absent,
            )
            .await
            .unwrap();
    }
    // The sample fired for the coming minute: a tick plans no probe already late for its slot.
    let minute = netmon_core::schedule::floor_minute(now) + chrono::Duration::minutes(1);
    let mut tick_event = sample("scheduler");
    tick_event["time"] = json!(minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let tick = invoke(&bin, &res, "scheduler", tick_event.clone()).await;
    assert_eq!(
        tick["minute"],
        json!(minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "{tick}"
    );
    assert_eq!(
        (tick["duplicate"].clone(), tick["targets"].clone()),
        (json!(false), json!(2))
    );
    assert_eq!(
        (tick["jobs"].clone(), tick["probes"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(tick["missed_heartbeats"], 1, "{tick}");
    let jobs_queue = res.get("NETMON_PROBE_JOBS_QUEUE_URL");
    assert_eq!(queue_depth(&harness.sqs, jobs_queue).await.unwrap(), 1);
    let again = invoke(&bin, &res, "scheduler", tick_event).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(queue_depth(&harness.sqs, jobs_queue).await.unwrap(), 1);
    let alerter_in = res.get("NETMON_ALERTER_IN_QUEUE_URL");
    let missed = take(&harness.sqs, alerter_in).await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["source"], "scheduler");
    assert_eq!(missed[0]["payload"]["location"], "push");
    assert_eq!(missed[0]["payload"]["results"][0]["target"], "backup");
    assert_eq!(
        missed[0]["payload"]["results"][0]["error"]["kind"],
        "missed"
    );

    // prober: probes the sample job (both targets refuse) and the sample message of two jobs
    // of two tenants, publishing one batch per job; the poison record is the only failure. The
    // alerter gets one message per prober message: the lone job's event as an object, the two
    // jobs' events as one array.
    let out = invoke(
        &bin,
        &res,
        "prober",
        with_poison(sample("prober"), "poison-job"),
    )
    .await;
    assert_eq!(failures(&out), ["poison-job"], "{out}");
    let messages = take(&harness.sqs, alerter_in).await;
    let mut shapes: Vec<Option<usize>> = messages
        .iter()
        .map(|m| m.as_array().map(Vec::len))
        .collect();
    shapes.sort();
    assert_eq!(shapes, [None, Some(2)], "{messages:?}");
    let mut published: Vec<Value> = messages
        .into_iter()
        .flat_map(|m| match m {
            Value::Array(events) => events,
            one => vec![one],
        })
        .collect();
    assert_eq!(published.len(), 3, "{published:?}");
    published.sort_by_key(|b| {
        b["payload"]["job_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    let jobs: Vec<(&str, &str, usize)> = published
        .iter()
        .map(|b| {
            assert_eq!(b["type"], "probe.completed");
            assert_eq!(b["payload"]["location"], "emulator");
            let results = b["payload"]["results"].as_array().unwrap();
            assert!(results.iter().all(|r| r["outcome"] == "down"), "{b}");
            assert!(results.iter().all(|r| r["tenant"] == b["tenant"]), "{b}");
            (
                b["payload"]["job_id"].as_str().unwrap(),
                b["tenant"].as_str().unwrap(),
                results.len(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("0192b3c4-0000-7000-8000-000000000001", "default", 2),
            ("0192b3c4-0000-7000-8000-000000000002", "default", 1),
            ("0192b3c4-0000-7000-8000-000000000003", "acme", 1),
        ]
    );

    // alerter: applies the sample's result for `web` (the other targets are unknown here and
    // ignored); the poison record is reported by its own id.
    let out = invoke(
        &bin,
        &res,
        "alerter",
        with_poison(fresh(sample("alerter")), "poison-a"),
    )
    .await;
    assert_eq!(failures(&out), ["poison-a"], "{out}");
    let state = netmon_core::ports::StateStore::load_state(
        &store,
        &tenant,
        &TargetId::parse("web").unwrap(),
    )
    .await
    .unwrap()
    .expect("web's state written by the alerter binary");
    assert!(state.value.locations.contains_key("eu-west-1"));

    // notifier: delivers the sample incident to the tenant's webhook.
    let hook = WebhookReceiver::start().await;
    let channel: ChannelSpec =
        serde_json::from_value(json!({"id": "hook", "webhook": {"url": hook.url()}})).unwrap();
    store
        .put_channel(
            Channel {
                tenant: tenant.clone(),
                spec: channel,
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .unwrap();
    let out = invoke(&bin, &res, "notifier", sample("notifier")).await;
    assert_eq!(failures(&out), Vec::<String>::new(), "{out}");
    let got = hook.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["type"], "incident.opened");
    assert_eq!(
        got[0].headers["x-netmon-event-id"],
        "default:api-20260314T094200.121Z:opened"
    );

    // recorder: its schedule fires; it drains recorder-in, where the alerter sample's first
    // probe batch waits (after what the prober binary published above), and deletes each
    // message once its results are in the history table.
    let recorder_in = res.get(ENV_RECORDER_IN_QUEUE_URL).to_owned();
    let published = queue_depth(&harness.sqs, &recorder_in).await.unwrap();
    let body = sample("alerter")["Records"][0]["body"]
        .as_str()
        .expect("a probe batch body")
        .to_owned();
    harness
        .sqs
        .send_message()
        .queue_url(&recorder_in)
        .message_body(body)
        .send()
        .await
        .expect("send to recorder-in");
    let out = invoke(&bin, &res, "recorder", sample("recorder")).await;
    assert_eq!(
        (&out["received"], &out["deleted"], &out["left"]),
        (&json!(published + 1), &json!(published + 1), &json!(0)),
        "{out}"
    );
    assert_eq!(queue_depth(&harness.sqs, &recorder_in).await.unwrap(), 0);
    let history = DynamoHistoryStore::new(
        harness.dynamodb.clone(),
        res.get(ENV_HISTORY_TABLE).to_owned(),
        std::sync::Arc::new(netmon_app::clock::SystemClock),
    );
    let since = chrono::DateTime::parse_from_rfc3339("2026-03-14T09:00:00Z")
        .unwrap()
        .to_utc();
    let recorded = history
        .results_since(&tenant, &TargetId::parse("api").unwrap(), since, 10)
        .await
        .unwrap();
    // The sample's result once (the prober binary's probe of `api` above is recorded too).
    let sample_start = chrono::DateTime::parse_from_rfc3339("2026-03-14T09:30:00.120Z")
        .unwrap()
        .to_utc();
    assert_eq!(
        recorded
            .iter()
            .filter(|r| r.started_at == sample_start)
            .count(),
        1,
        "{recorded:?}"
    );

    // api: API Gateway HTTP API v2 event in, v2 response out.
    let out = invoke(&bin, &res, "api", sample("api")).await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(out["body"], "ok", "{out}");
    let mut list = sample("api");
    list["rawPath"] = json!("/v1/targets");
    list["requestContext"]["http"]["path"] = json!("/v1/targets");
    let out = invoke(&bin, &res, "api", list.clone()).await;
    assert_eq!(
        out["statusCode"], 401,
        "keys are read from the state table: {out}"
    );
    let key = netmon_app::auth::create(
        &store,
        tenant.clone(),
        netmon_core::apikey::Role::Tenant,
        "runtime-test",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    list["headers"]["authorization"] = json!(format!("Bearer {}", key.secret));
    let out = invoke(&bin, &res, "api", list).await;
    assert_eq!(out["statusCode"], 200, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["spec"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["backup", "web"], "{body}");

    // Deployed without a session secret, the dashboard signs nobody in, even with a good key.
    let mut signin = sample("api");
    signin["rawPath"] = json!("/signin");
    signin["requestContext"]["http"]["path"] = json!("/signin");
    signin["requestContext"]["http"]["method"] = json!("POST");
    signin["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    signin["headers"]["origin"] = json!("https://abc123.execute-api.us-east-1.amazonaws.com");
    signin["body"] = json!(format!("key={}", key.secret));
    let out = invoke(&bin, &res, "api", signin).await;
    assert_eq!(out["statusCode"], 503, "{out}");
    let cookies = out["cookies"].as_array().map_or(0, Vec::len);
    assert_eq!(cookies, 0, "no session cookie: {out}");
    assert!(out["headers"]["set-cookie"].is_null(), "{out}");
}

/// A missing variable fails the cold start with a message naming it, before any event.
#[tokio::test]
async fn a_missing_variable_fails_init_naming_it() {
    let bin = tokio::task::spawn_blocking(binaries).await.unwrap();
    let api = RuntimeApi::start().await;
    let invoked = api
        .invoke_binary(
            &bin["alerter"],
            &[(
                ENV_INCIDENTS_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:x",
            )],
            sample("alerter"),
            TIMEOUT,
        )
        .await;
    assert!(
        matches!(
            invoked.invocation,
            Invocation::Exited {
                phase: Phase::Init,
                ..
            }
        ),
        "{invoked}"
    );
    assert!(
        invoked
            .stderr
            .contains("missing environment variable NETMON_STATE_TABLE"),
        "{invoked}"
    );
    assert_eq!(invoked.init_time, None, "never reached /next");
}
