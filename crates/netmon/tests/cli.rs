//! The `netmon` binary as users run it: exit codes, error text, clean Ctrl-C.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netmon_testkit::servers::{Mode, TargetServer};
use support::{Up, netmon};

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netmon-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("netmon.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_configs_exit_2_naming_file_key_and_line() {
    let cases = [
        (
            "unknown-key",
            "targets:\n  - id: web\n    http: {url: 'https://example.com'}\n    intervall: 1m\n",
            ":4:5: targets[0].intervall: unknown field `intervall`",
        ),
        (
            "bad-interval",
            "targets:\n  - id: web\n    http: {url: 'https://example.com'}\n    interval: 1s\n",
            ":4:15: targets[0].interval: interval 1s is out of range",
        ),
        (
            "duplicate-id",
            "targets:\n  - id: web\n    http: {url: 'https://example.com'}\n  - id: web\n    tcp: {host: example.com, port: 443}\n",
            ":4:9: targets[1].id: duplicate id \"web\": already used on line 2",
        ),
        (
            "bad-condition",
            "targets:\n  - id: web\n    http: {url: 'https://example.com'}\n    conditions: ['[STATUS] == 200', '[STAUTS] == 200']\n",
            "targets[0].conditions[1]: condition \"[STAUTS] == 200\": column 1",
        ),
    ];
    for (name, yaml, want) in cases {
        let path = write_config(name, yaml);
        let out = netmon()
            .arg("up")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(want),
            "{name}: wanted {want:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = netmon()
        .args(["up", "--config", "/nonexistent/netmon.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(netmon().output().unwrap().status.code(), Some(2));
    assert_eq!(
        netmon().arg("frobnicate").output().unwrap().status.code(),
        Some(2)
    );
    let out = netmon()
        .args([
            "check",
            "http://127.0.0.1:9/",
            "--condition",
            "[STATUS] >> 1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("column"));
    let out = netmon().args(["check", "gopher://x/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exit_codes_and_output() {
    let server = TargetServer::start().await;
    let url = server.url();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || netmon().args(args).output().unwrap())
    };

    let out = run(vec![
        "check".into(),
        url.clone(),
        "-C".into(),
        "[STATUS] == 200".into(),
        "-C".into(),
        "[BODY].status == UP".into(),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("PASS  GET "), "{stdout}");
    assert!(stdout.contains("timings: connect"), "{stdout}");
    assert!(
        stdout.contains("pass  [BODY].status == UP  (actual: UP)"),
        "{stdout}"
    );

    server.set_mode(Mode::Error);
    let out = run(vec!["check".into(), url.clone(), "--json".into()])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "down");
    assert_eq!(v["status_code"], 500);

    let out = run(vec![
        "check".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refused to connect to 169.254.169.254"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_within_one_probe_timeout() {
    let server = TargetServer::start().await;
    server.set_mode(Mode::Hang);
    let dir = std::env::temp_dir().join(format!("netmon-cli-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = write_config(
        "sigint",
        &format!(
            "listen: 127.0.0.1:0\nstore: {}\ntargets:\n  - id: slow\n    http: {{url: '{}'}}\n    timeout: 2s\n",
            dir.join("n.db").display(),
            server.url()
        ),
    );
    let result = tokio::task::spawn_blocking(move || {
        let mut child = netmon()
            .args(["up", "--config"])
            .arg(&path)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Wait for the ready line, by which time the hanging probe is in flight.
        for line in lines.by_ref() {
            if line.unwrap().contains("netmon up:") {
                break;
            }
        }
        let sent = Instant::now();
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = child.wait().unwrap();
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        (status, sent.elapsed(), rest)
    })
    .await
    .unwrap();
    let (status, took, rest) = result;
    assert_eq!(status.code(), Some(0), "{rest:?}");
    // One probe timeout (2s) plus start-up slack.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn apply_twice_changes_nothing_the_second_time() {
    let up = Up::start(
        "apply",
        "  - id: legacy\n    tcp: {host: 127.0.0.1, port: 9}\n",
    );
    let monitors = up.file(
        "monitors.yaml",
        "channels:\n  - id: ops\n    webhook:\n      url: http://127.0.0.1:9/hooks/T0KEN\n      secret: hush-hush\n  - id: console\n    log: {}\ntargets:\n  - id: web\n    http:\n      url: http://127.0.0.1:9/health\n      headers: {Authorization: Bearer sekrit-1}\n    interval: 30s\n    channels: [ops]\n  - id: cron\n    heartbeat: {period: 1h}\n",
    );

    let (code, out, err) = up.run(&["apply", "-f", &monitors]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Plan: 4 to create, 0 to update, 0 to delete"),
        "{out}"
    );
    assert!(
        out.contains("+ target web  (GET http://127.0.0.1:9/health every 30s)"),
        "{out}"
    );
    assert!(
        out.contains("+ channel ops  (webhook to 127.0.0.1)"),
        "{out}"
    );
    assert!(
        out.contains("Not in the file, kept (use --prune to delete): target legacy"),
        "{out}"
    );
    assert!(out.contains("Applied 4 change(s)."), "{out}");
    assert!(
        err.contains("[4/4] + target cron … done"),
        "progress on stderr: {err}"
    );
    for secret in ["T0KEN", "hush-hush", "sekrit-1"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed:\n{out}\n{err}"
        );
    }

    // The second run: nothing to do, and it says so (the generated heartbeat token is kept).
    let (code, out, _) = up.run(&["apply", "-f", &monitors]);
    assert_eq!(code, 0);
    assert!(out.starts_with("No changes: 4 resource(s) in"), "{out}");
    assert!(!out.contains("Applied"), "{out}");

    // A change: the plan names the fields, hides secret values, and applies with If-Match.
    let changed = up.file(
        "monitors.yaml",
        "channels:\n  - id: ops\n    webhook:\n      url: http://127.0.0.1:9/hooks/T0KEN2\n      secret: hush-hush\n  - id: console\n    log: {}\ntargets:\n  - id: web\n    http:\n      url: http://127.0.0.1:9/health\n      headers: {Authorization: Bearer sekrit-2}\n    interval: 45s\n    channels: [ops]\n  - id: cron\n    heartbeat: {period: 1h}\n",
    );
    let (code, out, err) = up.run(&["apply", "-f", &changed, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Plan: 0 to create, 2 to update, 0 to delete (2 unchanged)"),
        "{out}"
    );
    assert!(
        out.contains(
            "~ target web\n      http.headers: (secret changed)\n      interval: 30s → 45s"
        ),
        "{out}"
    );
    assert!(
        out.contains("~ channel ops\n      webhook.url: (secret changed)"),
        "{out}"
    );
    for secret in ["T0KEN", "sekrit"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    let (code, out, _) = up.run(&["apply", "-f", &changed, "--prune", "--output", "json"]);
    assert_eq!(code, 0);
    let plan: serde_json::Value = serde_json::from_str(&out).expect("JSON plan");
    let actions: Vec<(String, String)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("update".into(), "ops".into()),
            ("update".into(), "web".into()),
            ("delete".into(), "legacy".into())
        ]
    );
    let (_, out, _) = up.run(&["apply", "-f", &changed, "--prune"]);
    assert!(out.starts_with("No changes"), "{out}");
    let (code, out, _) = up.run(&["targets", "ls"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("web") && out.contains("45s") && !out.contains("legacy"),
        "{out}"
    );

    // A bad file: exit 2, file:line:column and the key.
    let bad = up.file(
        "bad.yaml",
        "targets:\n  - id: web\n    http: {url: 'http://x/'}\n    intervall: 1m\n",
    );
    let (code, _, err) = up.run(&["apply", "-f", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.yaml:4:5: targets[0].intervall: unknown field"),
        "{err}"
    );
    let bad = up.file(
        "badref.yaml",
        "targets:\n  - id: web\n    http: {url: 'http://x/'}\n    channels: [nope]\n",
    );
    let (code, _, err) = up.run(&["apply", "-f", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("badref.yaml:2: targets[0].channels"), "{err}");
}

#[test]
fn api_commands_keys_and_errors() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let target = server.block_on(TargetServer::start());
    let up = Up::start(
        "cmds",
        &format!(
            "  - id: api\n    http: {{url: '{}'}}\n    tags: [prod]\n",
            target.url()
        ),
    );

    let (code, out, err) = up.run(&[
        "targets",
        "add",
        "db",
        "tcp://127.0.0.1:9",
        "--interval",
        "30s",
        "--tag",
        "prod",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created target db (version 1)"), "{out}");
    let (code, _, err) = up.run(&["targets", "add", "x", "http://a/", "-C", "[STAUTS] == 200"]);
    assert_eq!(code, 2, "a bad condition is a usage error: {err}");
    assert!(err.contains("column 1"), "{err}");
    let (code, _, err) = up.run(&["targets", "add", "db", "tcp://127.0.0.1:9"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("HTTP 409") && err.contains("already exists"),
        "{err}"
    );

    let (code, out, _) = up.run(&["targets", "ls", "--tag", "prod", "--output", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);

    let (code, out, err) = up.run(&["check", "api"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PASS  GET "), "{out}");
    assert!(err.contains("probing api through"), "progress: {err}");
    let (code, out, _) = up.run(&["targets", "show", "api"]);
    assert_eq!(code, 0);
    assert!(out.contains("uptime:    24h 100% of"), "{out}");
    let (code, out, _) = up.run(&["status"]);
    assert!(out.starts_with("2 target(s): "), "{out}");
    assert!(code == 0 || code == 1, "{out}");
    let (code, out, _) = up.run(&["incidents", "ls", "--open"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("no incidents") || out.contains("INCIDENT"),
        "{out}"
    );
    let (code, out, _) = up.run(&["targets", "rm", "db"]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted target db"));
    let (code, _, err) = up.run(&["targets", "show", "db"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 404"), "{err}");
    let (code, _, err) = up.run(&["check", "api", "-C", "[STATUS] == 200"]);
    assert_eq!(code, 2, "{err}");

    // Keys over the API: the secret is printed once on stdout; listing never shows it.
    let (code, key, err) = up.run(&["keys", "create", "--name", "ci", "--tenant", "team-b"]);
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_owned();
    assert!(
        key.starts_with("nmk_") && err.contains("shown only now"),
        "{key} {err}"
    );
    let id = key[4..16].to_owned();
    let (code, out, _) = up.run_with_key(Some(&key), &["targets", "ls"]);
    assert_eq!(code, 0);
    assert!(
        !out.contains("api"),
        "team-b sees none of the default tenant's targets: {out}"
    );
    let (_, out, _) = up.run(&["keys", "ls"]);
    assert!(
        out.contains(&id) && out.contains("team-b") && !out.contains(&key[17..]),
        "{out}"
    );
    let (code, out, _) = up.run(&["keys", "revoke", &id]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("revoked key {id} (ci)")), "{out}");
    let (code, _, err) = up.run_with_key(Some(&key), &["targets", "ls"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("revoked") && err.contains("NETMON_API_KEY"),
        "{err}"
    );

    // Keys on the store file directly (works while `netmon up` runs).
    let store = up.dir.join("n.db").display().to_string();
    let (code, local, err) = up.run_with_key(
        None,
        &[
            "keys", "create", "--name", "laptop", "--role", "admin", "--store", &store,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = up.run_with_key(Some(local.trim()), &["keys", "ls"]);
    assert_eq!(
        code, 0,
        "a key made on the store works against the running API"
    );
    let (_, out, _) = up.run_with_key(None, &["keys", "ls", "--store", &store, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "{out}");

    // Clear errors: no key, nothing listening.
    let (code, _, err) = up.run_with_key(None, &["targets", "ls"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("HTTP 401") && err.contains("set NETMON_API_KEY"),
        "{err}"
    );
    let out = netmon()
        .args(["status", "--api", "http://127.0.0.1:9"])
        .env("NETMON_API_KEY", &up.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the API at http://127.0.0.1:9"),
        "{err}"
    );
    let (code, _, _) = up.run(&["targets", "ls", "--api", "ftp://x"]);
    assert_eq!(code, 2);
}

#[test]
fn the_admin_key_is_printed_on_first_start_only() {
    let up = Up::start("firstkey", "");
    assert_eq!(up.key.len(), 4 + 12 + 1 + 64);
    let config = up.dir.join("netmon.yaml");
    let out = {
        let mut child = netmon()
            .args(["up", "--config"])
            .arg(&config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let ready = line.contains("API on ");
            seen.push(line);
            if ready {
                break;
            }
        }
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
        seen.extend(BufReader::new(stdout).lines().map_while(Result::ok));
        seen
    };
    assert!(
        !out.iter().any(|l| l.contains("nmk_")),
        "a second start on the same store prints no key: {out:?}"
    );
}

/// Runs `netmon args` with the emulator's AWS endpoint, region and test credentials; returns
/// (exit code, stdout, stderr).
fn netmon_on_aws(
    emu: &netmon_testkit::emulator::Emulator,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let out = netmon()
        .args(args)
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .env("AWS_REGION", &emu.region)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run netmon");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first admin key of a cloud deployment: `keys create --dynamodb-table` writes it straight
/// into the state table (here on the emulator), `keys ls` lists it, and the key authenticates
/// against that table as the api function would check it; `revoke` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_directly_in_a_cloud_state_table() {
    let emu = netmon_testkit::emulator::start();
    let res = netmon_testkit::emulator::shared_async("dynamo").await;
    let table = res.get("NETMON_STATE_TABLE").to_owned();
    let tenant = format!("cli{}", std::process::id());
    let run = |args: &[&str]| {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--dynamodb-table", &table])
            .collect();
        netmon_on_aws(emu, &args)
    };
    let (code, stdout, stderr) = run(&[
        "keys",
        "create",
        "--name",
        "bootstrap",
        "--role",
        "admin",
        "--tenant",
        &tenant,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let secret = stdout.trim().to_owned();
    assert!(secret.starts_with("nmk_"), "{stdout}");
    assert!(stderr.contains(&format!("of tenant {tenant}")), "{stderr}");

    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    let store = netmon_aws::dynamo::state::DynamoStateStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table.clone(),
    );
    let principal = netmon_app::auth::authenticate(&store, &secret)
        .await
        .expect("the new key authenticates");
    assert_eq!(principal.tenant.as_str(), tenant);

    let (code, stdout, stderr) = run(&["--output", "json", "keys", "ls", "--tenant", &tenant]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["name"], "bootstrap");
    assert!(!stdout.contains(&secret), "secrets are never listed");

    let id = items[0]["id"].as_str().expect("id").to_owned();
    let (code, _, stderr) = run(&["keys", "revoke", &id]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        netmon_app::auth::authenticate(&store, &secret)
            .await
            .is_err(),
        "a revoked key no longer authenticates"
    );
}

/// `netmon dlq redrive` moves every parked message back to its queue, bodies and attributes
/// intact, and leaves the dead-letter queue empty; `count` says how many wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_redrive_moves_every_message_back() {
    let emu = netmon_testkit::emulator::start();
    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let tag = format!("dlqcli{}", std::process::id());
    let create = |name: String| {
        let sqs = sqs.clone();
        async move {
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .expect("create queue")
                .queue_url
                .expect("queue url")
        }
    };
    let dlq = create(format!("{tag}-dlq")).await;
    let queue = create(format!("{tag}-in")).await;
    let bodies: Vec<String> = (0..23).map(|i| format!("{{\"n\":{i}}}")).collect();
    for b in &bodies {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(b)
            .send()
            .await
            .expect("park");
    }
    let run = |args: &[&str]| netmon_on_aws(emu, args);
    let (code, stdout, stderr) = run(&["dlq", "count", "--queue", &dlq]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("23 waiting"), "{stdout}");
    let (code, _, stderr) = run(&["dlq", "redrive", "--from", &dlq, "--to", &queue]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("moved 23 message(s)"), "{stderr}");
    let (_, stdout, _) = run(&["dlq", "count", "--queue", &dlq]);
    assert!(stdout.starts_with("0 waiting, 0 in flight"), "{stdout}");
    let mut moved = Vec::new();
    while moved.len() < bodies.len() {
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let msgs = got.messages.unwrap_or_default();
        assert!(!msgs.is_empty(), "only {} arrived", moved.len());
        moved.extend(msgs.into_iter().filter_map(|m| m.body));
    }
    moved.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(moved, want);
    let (code, _, stderr) = run(&["dlq", "redrive", "--from", &dlq, "--to", &dlq]);
    assert_eq!(code, Some(2), "{stderr}");
}
