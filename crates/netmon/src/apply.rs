//! `netmon apply -f monitors.yaml`: config as code. Reads channels and targets in the config
//! file's shapes, compares them with what the API has, prints a plan (`+` create, `~` update
//! with the changed fields, `-` delete with `--prune`), then applies it. Secrets (header values,
//! request bodies, heartbeat tokens, webhook URLs and secrets) are never printed.

use std::path::Path;

use netmon_core::ChannelId;
use netmon_core::channel::{ChannelKind, ChannelSpec};
use netmon_core::target::{CheckSpec, TargetSpec};
use netmon_up::config;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{CliError, Client, encode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Channel,
    Target,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Channel => "channel",
            Kind::Target => "target",
        }
    }
    fn collection(self) -> &'static str {
        match self {
            Kind::Channel => "/v1/channels",
            Kind::Target => "/v1/targets",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    Create {
        kind: Kind,
        id: String,
        summary: String,
        #[serde(skip)]
        body: Value,
    },
    Update {
        kind: Kind,
        id: String,
        changes: Vec<String>,
        #[serde(skip)]
        body: Value,
        #[serde(skip)]
        version: u64,
    },
    Delete {
        kind: Kind,
        id: String,
    },
}

#[derive(Debug, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub unchanged: usize,
    /// Remote resources not in the file, kept because `--prune` was not given.
    pub kept: Vec<String>,
}

/// Paths whose values are secrets: their changes are named, never shown.
fn is_secret(path: &str) -> bool {
    path.starts_with("http.headers")
        || path == "http.body"
        || path == "heartbeat.token"
        || path.starts_with("webhook.")
        || netmon_app::channels::is_secret_path(path)
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `http.url: http://a → http://b` for each leaf that differs.
fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !is_secret(path) || path.is_empty() => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if is_secret(path) => out.push(format!("{path}: (secret changed)")),
        _ if path == "http.url" => {
            let safe = |v: &Value| {
                v.as_str()
                    .and_then(|u| url::Url::parse(u).ok())
                    .map_or_else(|| show(v), |u| safe_url(&u))
            };
            let (a, b) = (safe(old), safe(new));
            if a == b {
                out.push(format!("{path}: credentials or query changed (not shown)"));
            } else {
                out.push(format!("{path}: {a} → {b}"));
            }
        }
        _ => out.push(format!("{path}: {} → {}", show(old), show(new))),
    }
}

/// A URL without credentials or query (which may hold tokens), for plans.
fn safe_url(url: &url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

fn target_summary(spec: &TargetSpec) -> String {
    match &spec.check {
        CheckSpec::Http(h) => format!("{} {} every {}", h.method, safe_url(&h.url), spec.interval),
        other => format!("{other}"),
    }
}

fn channel_summary(spec: &ChannelSpec) -> String {
    match &spec.kind {
        // Webhook URLs (Slack's, say) are secrets themselves: the host only.
        ChannelKind::Webhook(w) => format!("webhook to {}", w.url.host_str().unwrap_or("?")),
        ChannelKind::Log(_) => "log".to_owned(),
        ChannelKind::Slack(c) => format!("slack to {}", c.url.expose().host_str().unwrap_or("?")),
        ChannelKind::Discord(c) => {
            format!("discord to {}", c.url.expose().host_str().unwrap_or("?"))
        }
        ChannelKind::Teams(c) => format!("teams to {}", c.url.expose().host_str().unwrap_or("?")),
        ChannelKind::GoogleChat(c) => {
            format!(
                "google_chat to {}",
                c.url.expose().host_str().unwrap_or("?")
            )
        }
        ChannelKind::Mattermost(c) => {
            format!("mattermost to {}", c.url.expose().host_str().unwrap_or("?"))
        }
        ChannelKind::PagerDuty(c) => {
            format!("pagerduty via {}", c.base().host_str().unwrap_or("?"))
        }
        ChannelKind::Opsgenie(c) => format!("opsgenie via {}", c.base().host_str().unwrap_or("?")),
        ChannelKind::Telegram(c) => format!("telegram to chat {}", c.chat_id),
        ChannelKind::Ntfy(c) => format!(
            "ntfy topic {} on {}",
            c.topic,
            c.server.host_str().unwrap_or("?")
        ),
        ChannelKind::Pushover(_) => "pushover".to_owned(),
        ChannelKind::Email(c) => format!("email to {} address(es)", c.to.len()),
    }
}

/// Computes the plan of one kind. `remote` are the API's resources (`{spec, version}`).
fn plan_kind(kind: Kind, desired: Vec<(String, Value, String)>, remote: &[Value], plan: &mut Plan) {
    for (id, mut body, summary) in desired {
        let current = remote.iter().find(|r| r["spec"]["id"] == id.as_str());
        match current {
            None => plan.steps.push(Step::Create {
                kind,
                id,
                summary,
                body,
            }),
            Some(cur) => {
                // A heartbeat without a token in the file keeps the one the server generated.
                if kind == Kind::Target
                    && body["heartbeat"].is_object()
                    && body["heartbeat"]["token"].is_null()
                    && let Some(token) = cur["spec"]["heartbeat"]["token"].as_str()
                {
                    body["heartbeat"]["token"] = json!(token);
                }
                // The API shows channel credentials as fingerprints: compare like with like.
                let mut compare = body.clone();
                if kind == Kind::Channel {
                    netmon_app::channels::redact_wire(&id, &mut compare);
                }
                let mut changes = Vec::new();
                diff("", &cur["spec"], &compare, &mut changes);
                if changes.is_empty() {
                    plan.unchanged += 1;
                } else {
                    plan.steps.push(Step::Update {
                        kind,
                        id,
                        changes,
                        body,
                        version: cur["version"].as_u64().unwrap_or(0),
                    });
                }
            }
        }
    }
}

/// Every remote resource of `kind` not named in `desired_ids` is deleted (with `--prune`) or
/// reported as kept.
fn plan_removals(
    kind: Kind,
    desired_ids: &[String],
    remote: &[Value],
    prune: bool,
    plan: &mut Plan,
) {
    for r in remote {
        let Some(id) = r["spec"]["id"].as_str() else {
            continue;
        };
        if desired_ids.iter().any(|d| d == id) {
            continue;
        }
        if prune {
            plan.steps.push(Step::Delete {
                kind,
                id: id.to_owned(),
            });
        } else {
            plan.kept.push(format!("{} {id}", kind.as_str()));
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, CliError> {
    serde_json::to_value(v).map_err(|e| CliError::Failed(format!("cannot encode: {e}")))
}

pub async fn compute(client: &Client, file: &Path, prune: bool) -> Result<Plan, CliError> {
    let (resources, text) =
        config::load_resources(file).map_err(|e| CliError::Usage(e.to_string()))?;
    let name = file.display().to_string();
    let remote_channels = client.get("/v1/channels").await?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let remote_targets = client.all_targets().await?;

    // Channels a target names: in the file, or (when not pruning) already on the server.
    let remote_ids: Vec<ChannelId> = remote_channels
        .iter()
        .filter_map(|c| c["spec"]["id"].as_str())
        .filter_map(|id| ChannelId::parse(id).ok())
        .collect();
    let mut known: Vec<&ChannelId> = resources.channels.iter().map(|c| &c.id).collect();
    if !prune {
        known.extend(remote_ids.iter());
    }
    config::check_channel_refs(&text, &name, &resources.targets, &known)
        .map_err(|e| CliError::Usage(e.to_string()))?;

    let mut plan = Plan::default();
    let channels = resources
        .channels
        .iter()
        .map(|c| Ok((c.id.to_string(), to_value(c)?, channel_summary(c))))
        .collect::<Result<Vec<_>, CliError>>()?;
    let channel_ids: Vec<String> = channels.iter().map(|(id, _, _)| id.clone()).collect();
    plan_kind(Kind::Channel, channels, &remote_channels, &mut plan);
    let targets = resources
        .targets
        .iter()
        .map(|t| Ok((t.id.to_string(), to_value(t)?, target_summary(t))))
        .collect::<Result<Vec<_>, CliError>>()?;
    let target_ids: Vec<String> = targets.iter().map(|(id, _, _)| id.clone()).collect();
    plan_kind(Kind::Target, targets, &remote_targets, &mut plan);
    // Targets go before channels, so a pruned channel is no longer in use when it goes.
    plan_removals(Kind::Target, &target_ids, &remote_targets, prune, &mut plan);
    plan_removals(
        Kind::Channel,
        &channel_ids,
        &remote_channels,
        prune,
        &mut plan,
    );
    Ok(plan)
}

pub fn render(plan: &Plan, file: &Path) -> String {
    let (mut c, mut u, mut d) = (0, 0, 0);
    let mut lines = Vec::new();
    for s in &plan.steps {
        match s {
            Step::Create {
                kind, id, summary, ..
            } => {
                c += 1;
                lines.push(format!("  + {} {id}  ({summary})", kind.as_str()));
            }
            Step::Update {
                kind, id, changes, ..
            } => {
                u += 1;
                lines.push(format!("  ~ {} {id}", kind.as_str()));
                lines.extend(changes.iter().map(|ch| format!("      {ch}")));
            }
            Step::Delete { kind, id } => {
                d += 1;
                lines.push(format!("  - {} {id}", kind.as_str()));
            }
        }
    }
    let mut out = if plan.steps.is_empty() {
        format!(
            "No changes: {} resource(s) in {} match the API.\n",
            plan.unchanged,
            file.display()
        )
    } else {
        format!(
            "Plan: {c} to create, {u} to update, {d} to delete ({} unchanged)\n{}\n",
            plan.unchanged,
            lines.join("\n")
        )
    };
    if !plan.kept.is_empty() {
        out.push_str(&format!(
            "Not in the file, kept (use --prune to delete): {}\n",
            plan.kept.join(", ")
        ));
    }
    out
}

/// Applies the plan step by step, reporting progress on stderr.
pub async fn execute(client: &Client, plan: &Plan) -> Result<(), CliError> {
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let (label, result) = match step {
            Step::Create { kind, id, body, .. } => (
                format!("+ {} {id}", kind.as_str()),
                client
                    .call(Method::POST, kind.collection(), Some(body))
                    .await,
            ),
            Step::Update {
                kind,
                id,
                body,
                version,
                ..
            } => (
                format!("~ {} {id}", kind.as_str()),
                client
                    .call_if_match(
                        Method::PUT,
                        &format!("{}/{}", kind.collection(), encode(id)),
                        Some(body),
                        Some(*version),
                    )
                    .await,
            ),
            Step::Delete { kind, id } => (
                format!("- {} {id}", kind.as_str()),
                client
                    .call(
                        Method::DELETE,
                        &format!("{}/{}", kind.collection(), encode(id)),
                        None,
                    )
                    .await,
            ),
        };
        match result {
            Ok(_) => eprintln!("[{}/{total}] {label} … done", i + 1),
            Err(e) => {
                eprintln!("[{}/{total}] {label} … failed", i + 1);
                return Err(CliError::Failed(format!(
                    "{label}: {}\n{} of {total} change(s) were applied before this; run apply again once fixed",
                    e.message(),
                    i
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_fields_and_hide_secrets() {
        let old = json!({"id": "w", "http": {"url": "https://u:pw@a.example/x?token=1", "headers": {"A": "s1"}}, "interval": "1m"});
        let new = json!({"id": "w", "http": {"url": "https://u:pw2@a.example/x?token=2", "headers": {"A": "s2"}}, "interval": "30s"});
        let mut out = Vec::new();
        diff("", &old, &new, &mut out);
        assert_eq!(
            out,
            [
                "http.headers: (secret changed)",
                "http.url: credentials or query changed (not shown)",
                "interval: 1m → 30s",
            ]
        );
        let shown = out.join(" ");
        for secret in ["pw", "token", "s1", "s2"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let mut out = Vec::new();
        diff(
            "",
            &json!({"http": {"url": "https://a.example/x"}}),
            &json!({"http": {"url": "https://b.example/x?k=v"}}),
            &mut out,
        );
        assert_eq!(out, ["http.url: https://a.example/x → https://b.example/x"]);
    }
}
