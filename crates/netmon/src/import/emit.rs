//! Writes converted resources as an apply file: the config file's shapes with defaults left
//! out, keys in the order the README documents them, every string quoted where YAML needs it
//! (serde-saphyr's emitter). The text is read back with the same loader `netmon apply` uses and
//! must give the same resources, so a quoting slip can never change a value.

use std::collections::BTreeMap;

use netmon_core::HumanDuration;
use netmon_core::channel::{ChannelKind, ChannelSpec, LogChannel, WebhookChannel};
use netmon_core::conditions::Condition;
use netmon_core::target::{
    self, CheckSpec, DnsCheck, HeartbeatCheck, HttpCheck, TargetSpec, TcpCheck,
};
use serde::Serialize;

use super::Converted;

#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    channels: Vec<ChannelOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    targets: Vec<TargetOut<'a>>,
}

#[derive(Serialize)]
struct ChannelOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a WebhookChannel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<&'a LogChannel>,
}

#[derive(Serialize)]
struct TargetOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<&'a TcpCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a DnsCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat: Option<&'a HeartbeatCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    conditions: &'a [Condition],
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_threshold: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success_threshold: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reminder_interval: Option<HumanDuration>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    channels: &'a [netmon_core::ChannelId],
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public: Option<bool>,
}

#[derive(Serialize)]
struct HttpOut<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_redirects: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify_tls: Option<bool>,
}

/// `Some(v)` unless it is the default.
fn unless<T: PartialEq>(v: T, default: T) -> Option<T> {
    (v != default).then_some(v)
}

fn channel_out(c: &ChannelSpec) -> ChannelOut<'_> {
    let (webhook, log) = match &c.kind {
        ChannelKind::Webhook(w) => (Some(w), None),
        ChannelKind::Log(l) => (None, Some(l)),
        // Importers write webhook and log channels only.
        _ => (None, None),
    };
    ChannelOut {
        id: c.id.as_str(),
        name: (c.name != c.id.as_str()).then_some(c.name.as_str()),
        webhook,
        log,
    }
}

fn http_out(h: &HttpCheck) -> HttpOut<'_> {
    HttpOut {
        url: h.url.as_str(),
        method: (h.method != "GET").then_some(h.method.as_str()),
        headers: &h.headers,
        body: h.body.as_deref(),
        follow_redirects: unless(h.follow_redirects, true),
        // Only meaningful when redirects are followed.
        max_redirects: unless(h.max_redirects, 5).filter(|_| h.follow_redirects),
        verify_tls: unless(h.verify_tls, true),
    }
}

fn target_out(t: &TargetSpec) -> TargetOut<'_> {
    let (mut http, mut tcp, mut dns, mut heartbeat) = (None, None, None, None);
    match &t.check {
        CheckSpec::Http(h) => http = Some(http_out(h)),
        CheckSpec::Tcp(c) => tcp = Some(c),
        CheckSpec::Dns(d) => dns = Some(d),
        CheckSpec::Heartbeat(h) => heartbeat = Some(h),
    }
    let probed = heartbeat.is_none();
    TargetOut {
        id: t.id.as_str(),
        name: (t.name != t.id.as_str()).then_some(t.name.as_str()),
        http,
        tcp,
        dns,
        heartbeat,
        // Heartbeats are not probed: their period is the interval that matters.
        interval: probed.then_some(t.interval),
        timeout: unless(t.timeout, target::default_timeout()).filter(|_| probed),
        conditions: &t.conditions,
        failure_threshold: unless(t.failure_threshold, target::default_failure_threshold()),
        success_threshold: unless(t.success_threshold, target::default_success_threshold()),
        reminder_interval: t.reminder_interval,
        tags: &t.tags,
        channels: &t.channels,
        enabled: unless(t.enabled, true),
        public: unless(t.public, false),
    }
}

fn printable(name: &str) -> String {
    name.chars()
        .map(|ch| {
            if netmon_core::ids::is_printable_text(ch.encode_utf8(&mut [0; 4])) {
                ch
            } else {
                ' '
            }
        })
        .collect()
}

/// YAML comment lines: `# ` before each line, nothing that could end the comment.
fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            let clean: String = l.chars().filter(|c| !c.is_control()).collect();
            format!("# {clean}").trim_end().to_owned() + "\n"
        })
        .collect()
}

/// The apply file, with `header` and the report as comments on top. Errors are this
/// program's bugs (the emitted text did not read back as the same resources).
pub(crate) fn to_yaml(c: &Converted, header: &str) -> Result<String, String> {
    // Names with control characters are refused on load: a source's (a tab, a line break)
    // become spaces.
    let channels: Vec<_> = c
        .channels
        .iter()
        .cloned()
        .map(|mut ch| {
            ch.name = printable(&ch.name);
            ch
        })
        .collect();
    let targets: Vec<_> = c
        .targets
        .iter()
        .cloned()
        .map(|mut t| {
            t.name = printable(&t.name);
            t
        })
        .collect();
    let file = FileOut {
        channels: channels.iter().map(channel_out).collect(),
        targets: targets.iter().map(target_out).collect(),
    };
    let mut out = comment(header);
    let skipped = c.report.skipped_lines();
    if !skipped.is_empty() {
        out.push_str("#\n# Not carried over, or carried over differently:\n");
        for line in skipped {
            out.push_str(&comment(&format!("  - {line}")));
        }
    }
    out.push('\n');
    if channels.is_empty() && targets.is_empty() {
        out.push_str("targets: []\n");
    } else {
        let body = serde_saphyr::to_string(&file)
            .map_err(|e| format!("internal error: cannot write YAML: {e}"))?;
        out.push_str(&body);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    let back = netmon_up::config::parse_resources(&out, "the imported file")
        .map_err(|e| format!("internal error: the imported file does not read back: {e}"))?;
    if back.channels != channels || back.targets != targets {
        return Err("internal error: the imported file reads back differently".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Report;

    fn target(json: serde_json::Value) -> TargetSpec {
        serde_json::from_value(json).expect("valid target")
    }

    /// Values that YAML would misread unquoted survive the trip, and defaults are left out.
    #[test]
    fn awkward_values_read_back_the_same() {
        let awkward = [
            "yes",
            "no",
            "null",
            "~",
            "123",
            "0x1F",
            "1e3",
            "2024-01-01",
            "a: b",
            "# not",
            "- x",
            "'q'",
            "\"dq\"",
            "*alias",
            "&anchor",
            "!tag",
            "%x",
            "@x",
            "`x",
            "{a}",
            "[a]",
            "x #y",
            " lead",
            "trail ",
            "tab\there",
            "multi\nline",
            "ünï",
            "",
            "|",
            ">",
        ];
        let targets: Vec<TargetSpec> = awkward
            .iter()
            .enumerate()
            .map(|(i, s)| {
                target(serde_json::json!({
                    "id": format!("t{i}"),
                    "name": if s.trim().is_empty() { "blank" } else { s },
                    "http": {
                        "url": "https://example.com/a?b=c#d",
                        "headers": {"X-Value": s.replace('\n', " ")},
                        "body": s,
                        "method": "POST",
                    },
                    "conditions": [
                        format!("[BODY] == \"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
                        "[BODY] == pat(*<div id=\"user\">*)",
                    ],
                    "tags": ["group:core"],
                }))
            })
            .collect();
        let c = Converted {
            targets,
            ..Converted::default()
        };
        let yaml = to_yaml(&c, "header").expect("reads back");
        assert!(yaml.starts_with("# header\n"), "{yaml}");
        assert!(yaml.contains("name: multi line\n"), "{yaml}");
        assert!(
            !yaml.contains("follow_redirects"),
            "defaults left out:\n{yaml}"
        );
        assert!(!yaml.contains("enabled"), "defaults left out:\n{yaml}");
    }

    #[test]
    fn every_kind_and_setting_reads_back() {
        let targets = vec![
            target(
                serde_json::json!({"id": "web", "http": {"url": "http://127.0.0.1:9/",
                "follow_redirects": false, "verify_tls": false}, "interval": "30s",
                "timeout": "2s", "failure_threshold": 1, "success_threshold": 1,
                "reminder_interval": "1h", "enabled": false, "public": true,
                "channels": ["ops"]}),
            ),
            target(
                serde_json::json!({"id": "redirects", "http": {"url": "https://x/",
                "max_redirects": 0}}),
            ),
            target(serde_json::json!({"id": "db", "tcp": {"host": "db.internal", "port": 5432}})),
            target(
                serde_json::json!({"id": "dns", "dns": {"name": "example.com",
                "record_type": "MX", "resolver": "1.1.1.1:53", "expected": ["10 mx.example.com."]}}),
            ),
            target(
                serde_json::json!({"id": "cron", "heartbeat": {"period": "1d", "grace": "0s",
                "token": "abc-0123456789abcdef"}}),
            ),
        ];
        let channels = vec![
            serde_json::from_value(serde_json::json!({"id": "ops", "name": "Ops team",
                "webhook": {"url": "https://hooks.example.com/x", "headers": {"A": "b"}}}))
            .expect("channel"),
            serde_json::from_value(serde_json::json!({"id": "no-alerts", "log": {}}))
                .expect("channel"),
        ];
        let mut report = Report::default();
        report.skip("endpoint \"x\"", "line one\nline two");
        let c = Converted {
            channels,
            targets,
            report,
            ..Converted::default()
        };
        let yaml = to_yaml(&c, "imported").expect("reads back");
        assert!(
            yaml.contains("#   - endpoint \"x\": line one\n# line two\n"),
            "{yaml}"
        );
        let empty = to_yaml(&Converted::default(), "nothing").expect("empty file");
        assert!(empty.ends_with("targets: []\n"), "{empty}");
    }
}
