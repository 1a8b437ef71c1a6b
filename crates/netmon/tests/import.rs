//! `netmon import gatus` and `netmon import uptime-kuma` as users run them: a realistic Gatus
//! config and Kuma databases built from Kuma's migrations (tests/fixtures), the report on
//! stderr, exit codes, and the written file going through `netmon apply`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{Up, netmon, scratch};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn run(args: &[&str]) -> Output {
    netmon()
        .args(args)
        .env("HOOK_TOKEN", "hook-t0ken")
        .env("API_TOKEN", "api-t0ken")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The imported file as JSON, for looking things up.
fn read_yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn target<'a>(file: &'a Value, id: &str) -> &'a Value {
    file["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no target {id}"))
}

/// `netmon apply -f FILE --dry-run` against a fresh `netmon up` shows a plan creating
/// everything, and the real apply is accepted by the API.
fn applies(name: &str, file: &Path, resources: usize) {
    let up = Up::start(name, "");
    let file = file.display().to_string();
    let (code, out, err) = up.run(&["apply", "-f", &file, "--dry-run"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "Plan: {resources} to create, 0 to update, 0 to delete"
        )),
        "{out}"
    );
    let (code, out, err) = up.run(&["apply", "-f", &file]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("Applied {resources} change(s).")),
        "{out}"
    );
}

/// Gatus's key for an endpoint (`group_name`, lower case, ` /_.,#+&` as `-`).
fn gatus_key(e: &Value) -> String {
    let clean = |s: &str| {
        s.trim()
            .to_lowercase()
            .chars()
            .map(|c| if " /_.,#+&".contains(c) { '-' } else { c })
            .collect::<String>()
    };
    let name = clean(e["name"].as_str().unwrap());
    match e["group"].as_str() {
        Some(g) => format!("{}_{name}", clean(g)),
        None => name,
    }
}

#[test]
fn gatus_config_converts_names_what_it_skips_and_applies() {
    let dir = scratch("gatus");
    let config = format!("{FIXTURES}/gatus/config.yaml");
    let out_file = dir.join("monitors.yaml");
    let out = run(&["import", "gatus", &config, "-o", out_file.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "the file went to -o: {stdout}");
    assert!(
        stderr.contains("15 target(s) and 3 channel(s) written to"),
        "{stderr}"
    );

    // Every endpoint, external endpoint and suite is a target or named on stderr.
    let source: Value = serde_saphyr::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let file = read_yaml(&out_file);
    let ids: BTreeSet<&str> = file["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let endpoints = source["endpoints"].as_array().unwrap();
    let external = source["external-endpoints"].as_array().unwrap();
    assert!(endpoints.len() >= 15);
    for (kind, list) in [("endpoint", endpoints), ("external endpoint", external)] {
        for e in list {
            let key = gatus_key(e);
            assert!(
                ids.contains(key.as_str()) || stderr.contains(&format!("{kind} \"{key}\": ")),
                "{kind} {key} neither converted nor reported:\n{stderr}"
            );
        }
    }
    for line in [
        "endpoint \"internal_ping-gateway\": icmp:// endpoints have no netmon check",
        "endpoint \"internal_bastion-ssh\": ssh:// endpoints have no netmon check",
        "endpoint \"api_websocket\": wss:// endpoints have no netmon check",
        "endpoint \"api_oauth-api\": client.oauth2: netmon cannot fetch OAuth2 tokens",
        "endpoint \"frontend_blog\" condition \"[DOMAIN_EXPIRATION] > 720h\": netmon does not check domain expiration",
        "endpoint \"status-json\" condition \"[BODY] == 1 == 2\": netmon refuses it: column 13",
        "endpoint \"payments_checkout\": maintenance-windows are not carried over",
        "endpoint \"internal_redis\" condition \"[BODY] == pat(*PONG*)\": netmon's tcp check only connects",
        "endpoint \"frontend_website\": alerts have different failure thresholds (3, 5)",
        "endpoint \"status-json\": interval 5s is outside netmon's range",
        "external endpoint \"jobs_manual-push\": no heartbeat.interval",
        "suite \"signup-flow\": suites",
        "maintenance: recurring maintenance windows are not carried over",
        "alerting.slack: netmon has no slack channel (it has webhook and log channels); alerts of this type dropped from endpoint \"frontend_website\", endpoint \"status-json\"",
        "alerting.pagerduty: netmon has no pagerduty channel",
        "alerting.custom, alerting.custom.overrides[0] (group \"payments\"): the body template is not carried over",
        "`metrics`, `security`, `storage`, `ui`, `web`: Gatus server and dashboard settings",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    // The same report heads the file, as comments.
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        written.contains("#   - suite \"signup-flow\": suites"),
        "{written}"
    );

    // What carried over, and how.
    let website = target(&file, "frontend_website");
    assert_eq!(website["interval"], "30s");
    assert_eq!(website["timeout"], "5s");
    assert_eq!(website["tags"], serde_json::json!(["frontend"]));
    assert_eq!(website["channels"], serde_json::json!(["custom"]));
    assert_eq!(
        website["conditions"][2],
        "[BODY] == pat(*<title>Example</title>*)"
    );
    let users = target(&file, "api_users");
    assert_eq!(
        users["http"]["headers"]["Authorization"], "Bearer api-t0ken",
        "environment expanded as Gatus does"
    );
    assert_eq!(
        users["conditions"][2],
        "[BODY].data[0].id == [BODY].first_id"
    );
    assert_eq!(
        target(&file, "api_health")["conditions"][2],
        "[BODY].checks.database == ok",
        "[body] upper-cased"
    );
    assert_eq!(
        target(&file, "api_search")["conditions"][1],
        "[STATUS] == 200",
        "200 == [STATUS] turned around"
    );
    assert_eq!(
        target(&file, "api_search")["http"]["body"],
        "{\"query\": \"search\", \"source\": \"api\"}"
    );
    assert_eq!(
        target(&file, "api_graphql")["http"]["body"],
        "{\"query\":\"{ user(id: 1) { name } }\\n\"}"
    );
    assert_eq!(
        target(&file, "payments_checkout")["channels"],
        serde_json::json!(["custom-payments"])
    );
    let dns = target(&file, "dns_dns-a-record");
    assert_eq!(dns["dns"]["expected"], serde_json::json!(["93.184.215.14"]));
    assert_eq!(dns["dns"]["resolver"], "8.8.8.8");
    let admin = target(&file, "internal_legacy-admin");
    assert_eq!(admin["http"]["verify_tls"], false);
    assert_eq!(admin["http"]["follow_redirects"], false);
    assert_eq!(admin["channels"], serde_json::json!(["no-alerts"]));
    assert_eq!(target(&file, "frontend_docs")["enabled"], false);
    let backup = target(&file, "jobs_nightly-backup");
    assert_eq!(backup["heartbeat"]["period"], "1d");
    assert_eq!(backup["heartbeat"]["token"], "backup-push-token");

    applies("gatus", &out_file, 18);
}

#[test]
fn a_gatus_config_that_fully_converts_exits_0_and_prints_the_file() {
    let dir = scratch("gatus-clean");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "endpoints:\n  - name: api\n    group: core\n    url: https://api.example.com/health\n    interval: 30s\n    conditions:\n      - '[STATUS] == 200'\n      - 'len([BODY]) > 0'\n      - '[BODY] == not found'\n  - name: db\n    url: tcp://db.example.com:5432\n    conditions: ['[CONNECTED] == true']\n",
    )
    .unwrap();
    let out = run(&["import", "gatus", config.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Not carried over"), "{stderr}");
    let file: Value = serde_saphyr::from_str(&stdout).unwrap();
    assert_eq!(file["targets"][0]["id"], "core_api");
    assert_eq!(file["targets"][0]["conditions"][2], "[BODY] == not found");
    assert_eq!(file["targets"][1]["tcp"]["port"], 5432);
    assert_eq!(file["channels"][0]["id"], "no-alerts");
}

/// A Kuma database as Kuma makes it: the 1.23 schema (its baseline plus patches), optionally
/// the 2.x migrations, and the monitors a user added.
fn kuma_db(dir: &Path, name: &str, parts: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let db = rusqlite::Connection::open(&path).unwrap();
    for part in parts {
        let sql = std::fs::read_to_string(format!("{FIXTURES}/kuma/{part}")).unwrap();
        db.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{part}: {e}"));
    }
    path
}

fn kuma_monitors(db: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut stmt = db
        .prepare("SELECT name, type FROM monitor ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn check_kuma(version: &str, parts: &[&str], targets: usize, channels: usize) {
    let dir = scratch(&format!("kuma-{version}"));
    let db = kuma_db(&dir, "kuma.db", parts);
    let before = std::fs::read(&db).unwrap();
    let out_file = dir.join("monitors.yaml");
    let out = run(&[
        "import",
        "uptime-kuma",
        db.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database is only read"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the file holds secrets");
    }
    assert!(
        stderr.contains(&format!("read Uptime Kuma {version}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{targets} target(s) and {channels} channel(s) written to"
        )),
        "{stderr}"
    );

    // Every monitor is a target (by name) or named on stderr; each supported type converted.
    let file = read_yaml(&out_file);
    let targets_json = file["targets"].as_array().unwrap();
    let names: BTreeSet<String> = targets_json
        .iter()
        .map(|t| t["name"].as_str().or(t["id"].as_str()).unwrap().to_owned())
        .collect();
    let monitors = kuma_monitors(&db);
    let mut converted_types = BTreeSet::new();
    for (name, kind) in &monitors {
        if names.contains(name) {
            converted_types.insert(kind.as_str());
        } else {
            assert!(
                stderr.contains(&format!("monitor \"{name}\": ")),
                "monitor {name} ({kind}) neither converted nor reported:\n{stderr}"
            );
        }
    }
    for kind in ["http", "keyword", "json-query", "port", "dns", "push"] {
        assert!(
            converted_types.contains(kind),
            "no {kind} monitor converted"
        );
    }
    for kind in ["group", "ping", "docker", "mqtt", "real-browser"] {
        let (name, _) = monitors.iter().find(|(_, k)| k == kind).unwrap();
        assert!(
            stderr.contains(&format!("monitor \"{name}\": ")),
            "{kind}: {stderr}"
        );
    }
    for line in [
        "notification \"Team Slack\": netmon has no slack channel",
        "notification \"Old Telegram\": disabled in Kuma",
        "notification \"Chat bridge\": the custom body is not carried over",
        "monitor \"Intranet (NTLM)\": ntlm authentication is not supported",
        "monitor \"Old site must be gone\": upside-down mode has no netmon equivalent",
        "monitor \"Queue depth\": the JSON query \"$count(queue)\" is a JSONata expression",
        "monitor \"Partner API via proxy\": its proxy is not carried over",
        "monitor \"Website\", monitor \"Status indicator\": its slack notification is not carried over",
        "1 maintenance: maintenance windows are not carried over",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }

    let website = target(&file, "website");
    assert_eq!(
        website["conditions"],
        serde_json::json!([
            "[STATUS] >= 200",
            "[STATUS] <= 299",
            "[CERTIFICATE_EXPIRATION] > 7d"
        ])
    );
    assert_eq!(website["public"], true, "on a published status page");
    assert_eq!(
        website["tags"],
        serde_json::json!(["group:Production", "env:prod", "Critical"])
    );
    assert_eq!(website["channels"], serde_json::json!(["ops-webhook"]));
    assert!(
        website.get("failure_threshold").is_none(),
        "2 retries: 3, the default"
    );
    assert_eq!(website["success_threshold"], 1);
    let order = target(&file, "api-create-order");
    assert_eq!(order["http"]["method"], "POST");
    assert_eq!(
        order["http"]["headers"],
        serde_json::json!({"Authorization": "Basic bW9uaXRvcjpzM2NyZXQ=",
            "Content-Type": "application/json", "X-Request-Source": "uptime-kuma"})
    );
    assert_eq!(
        order["conditions"],
        serde_json::json!(["[STATUS] == any(200, 204)"])
    );
    assert_eq!(order["reminder_interval"], "5m");
    assert_eq!(
        target(&file, "homepage-keyword")["conditions"][2],
        "[BODY] == pat(\"*Welcome to \\\"Example\\\"*\")"
    );
    assert_eq!(
        target(&file, "no-maintenance-banner")["conditions"][2],
        "[BODY] != pat(\"*Down for maintenance*\")"
    );
    assert_eq!(
        target(&file, "status-indicator")["conditions"][2],
        "[BODY].status.indicator == \"none\""
    );
    assert_eq!(target(&file, "postgres")["failure_threshold"], 4);
    assert_eq!(
        target(&file, "telnet-stays-closed")["conditions"],
        serde_json::json!(["[CONNECTED] == false"])
    );
    assert_eq!(
        target(&file, "mx-via-local-resolver")["dns"]["resolver"],
        "192.168.1.1:5353"
    );
    let push = target(&file, "nightly-backup");
    assert_eq!(
        push["heartbeat"],
        serde_json::json!({"period": "1d", "grace": "1h"}),
        "Kuma's 12-character push token is too short to keep: netmon generates one"
    );
    let staging = target(&file, "staging");
    assert_eq!(staging["enabled"], false);
    assert_eq!(staging["http"]["follow_redirects"], false);
    assert_eq!(staging["http"]["verify_tls"], false);

    applies(&format!("kuma-{version}"), &out_file, targets + channels);
}

#[test]
fn kuma_1_23_database_converts_and_applies() {
    check_kuma("1.23", &["schema-1.23.sql", "monitors.sql"], 12, 3);
}

#[test]
fn kuma_2_database_converts_and_applies() {
    check_kuma(
        "2.x",
        &[
            "schema-1.23.sql",
            "monitors.sql",
            "migrations-2.x.sql",
            "monitors-2.x.sql",
        ],
        17,
        3,
    );
    // What only 2.x has.
    let dir = scratch("kuma-2x-details");
    let db = kuma_db(
        &dir,
        "kuma.db",
        &[
            "schema-1.23.sql",
            "monitors.sql",
            "migrations-2.x.sql",
            "monitors-2.x.sql",
        ],
    );
    let out = run(&["import", "uptime-kuma", db.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    let file: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        target(&file, "latency-budget")["conditions"][2],
        "[BODY].metrics.p95 < 250"
    );
    assert_eq!(
        target(&file, "version-is-v2")["conditions"][2],
        "[BODY].build.version == pat(\"*v2.*\")"
    );
    assert_eq!(
        target(&file, "admin-api-bearer")["http"]["headers"]["Authorization"],
        "Bearer adm1n-t0ken"
    );
    for line in [
        "monitor \"Resolver answers\": only the first DNS server (9.9.9.9) is carried over",
        "monitor \"Resolver answers\": its DNS record conditions are not carried over",
        "monitor \"CDN asset\": cache_bust is not carried over",
        "monitor \"Mail relay\": smtp monitors have no netmon check",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
}

/// Exit 2 with a message naming the problem, and no output file.
fn refused(args: &[&str], out_file: &Path, fragment: &str) {
    let out = run(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(fragment),
        "{args:?}: wanted {fragment:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "{args:?} printed a file");
    assert!(!out_file.exists(), "{args:?} wrote {}", out_file.display());
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = scratch("bad");
    let out_file = dir.join("monitors.yaml");
    let o = out_file.to_str().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };

    let not_yaml = write("not-yaml.yaml", b"endpoints: [\n  - name: a\n    url: x\n");
    refused(
        &["import", "gatus", &not_yaml, "-o", o],
        &out_file,
        "is not a Gatus config: not YAML",
    );
    let binary = write(
        "binary.yaml",
        &[0x50, 0x4b, 0x03, 0x04, 0xff, 0xfe, 0x00, 0x01],
    );
    refused(
        &["import", "gatus", &binary, "-o", o],
        &out_file,
        "is not a Gatus config",
    );
    let list = write("list.yaml", b"- name: a\n- name: b\n");
    refused(
        &["import", "gatus", &list, "-o", o],
        &out_file,
        "expected a mapping with `endpoints`, found a list",
    );
    let other = write("other.yaml", b"targets:\n  - id: web\n");
    refused(
        &["import", "gatus", &other, "-o", o],
        &out_file,
        "it has no `endpoints` (keys found: targets)",
    );
    refused(
        &["import", "gatus", "/nonexistent/config.yaml", "-o", o],
        &out_file,
        "cannot read /nonexistent/config.yaml",
    );

    let text_file = write("kuma.db", b"this is not a database, just text\n");
    refused(
        &["import", "uptime-kuma", &text_file, "-o", o],
        &out_file,
        "is not an Uptime Kuma database: not an SQLite database file",
    );
    let empty = dir.join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER);")
        .unwrap();
    refused(
        &["import", "uptime-kuma", empty.to_str().unwrap(), "-o", o],
        &out_file,
        "is not an Uptime Kuma database: it has no monitor, notification, monitor_notification, setting table",
    );
    refused(
        &["import", "uptime-kuma", "/nonexistent/kuma.db", "-o", o],
        &out_file,
        "no such file",
    );

    // Newer than any Kuma netmon knows: a migration, a patch, a database_version.
    let newer = kuma_db(
        &dir,
        "newer-2x.db",
        &["schema-1.23.sql", "migrations-2.x.sql"],
    );
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch(
            "INSERT INTO knex_migrations (name, batch) VALUES ('2027-01-01-0000-add-quantum-monitor.js', 2);",
        )
        .unwrap();
    refused(
        &["import", "uptime-kuma", newer.to_str().unwrap(), "-o", o],
        &out_file,
        "it records migrations netmon does not know (2027-01-01-0000-add-quantum-monitor.js): written by an Uptime Kuma newer",
    );
    let patched = kuma_db(&dir, "newer-patch.db", &["schema-1.23.sql"]);
    rusqlite::Connection::open(&patched)
        .unwrap()
        .execute_batch(
            "UPDATE setting SET value = json_set(value, '$.\"patch-from-the-future.sql\"', json('true')) WHERE key = 'databasePatchedFiles';",
        )
        .unwrap();
    refused(
        &["import", "uptime-kuma", patched.to_str().unwrap(), "-o", o],
        &out_file,
        "schema patches netmon does not know (patch-from-the-future.sql)",
    );
    let version = kuma_db(&dir, "newer-version.db", &["schema-1.23.sql"]);
    rusqlite::Connection::open(&version)
        .unwrap()
        .execute_batch("UPDATE setting SET value = '11' WHERE key = 'database_version';")
        .unwrap();
    refused(
        &["import", "uptime-kuma", version.to_str().unwrap(), "-o", o],
        &out_file,
        "database_version 11 is newer than any Uptime Kuma netmon knows",
    );
}
