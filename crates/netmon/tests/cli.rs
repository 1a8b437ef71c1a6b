//! The `netmon` binary as users run it: exit codes, error text, clean Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netmon_testkit::servers::{Mode, TargetServer};

fn netmon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netmon"))
}

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
