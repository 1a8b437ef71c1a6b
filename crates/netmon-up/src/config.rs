//! The `netmon up` config file: YAML, strict (unknown keys are errors), every error naming the
//! file, the key path and the line.

// A config error happens once, at start-up; its size on the error path costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use netmon_core::channel::ChannelSpec;
use netmon_core::duration::HumanDuration;
use netmon_core::ids::is_printable_text;
use netmon_core::target::{CheckSpec, TargetSpec, check_heartbeat_token};
use netmon_core::{ChannelId, TenantId};
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where this process probes from; appears on every result.
    pub location: String,
    /// API and status page address.
    pub listen: SocketAddr,
    /// SQLite database file, resolved relative to the config file.
    pub store: PathBuf,
    pub tenant: TenantId,
    /// The address people reach this API at; notifications link to the status page under it.
    pub public_url: Option<url::Url>,
    pub probe: ProbeSettings,
    pub api: ApiSettings,
    pub history: HistorySettings,
    pub channels: Vec<ChannelSpec>,
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// How long raw results (the recent-results list) are kept; older history is hourly
    /// rollups. At least 2h.
    #[serde(default = "default_raw_retention")]
    pub raw_retention: HumanDuration,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            raw_retention: default_raw_retention(),
        }
    }
}

fn default_raw_retention() -> HumanDuration {
    HumanDuration::from_secs(48 * 3600)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Per API key, and per client IP for requests without a valid key.
    #[serde(default)]
    pub rate_limit: netmon_app::http::limit::RateLimits,
    /// Header-read (and idle) timeout and connection caps of the HTTP server.
    #[serde(default)]
    pub server: crate::serve::ServerLimits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettings {
    /// Probes in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Loopback and private ranges (RFC 1918, ULA, CGNAT). On by default here: a laptop monitor
    /// watches local services. The cloud prober refuses them by default.
    #[serde(default = "yes")]
    pub allow_private: bool,
    /// Link-local ranges, including cloud metadata endpoints. Off unless you really mean it.
    #[serde(default)]
    pub allow_link_local: bool,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            allow_private: true,
            allow_link_local: false,
        }
    }
}

/// An http(s) base URL; a missing trailing slash is added, so links join under it.
fn de_public_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let Some(mut url) = Option::<url::Url>::deserialize(d)? else {
        return Ok(None);
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(serde::de::Error::custom("public_url must be http or https"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(Some(url))
}

fn default_concurrency() -> usize {
    64
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default)]
    store: Option<PathBuf>,
    #[serde(default)]
    tenant: Option<TenantId>,
    #[serde(default, deserialize_with = "de_public_url")]
    public_url: Option<url::Url>,
    #[serde(default)]
    probe: ProbeSettings,
    #[serde(default)]
    api: ApiSettings,
    #[serde(default)]
    history: HistorySettings,
    #[serde(default)]
    channels: Vec<ChannelSpec>,
    #[serde(default)]
    targets: Vec<TargetSpec>,
}

/// A config problem with enough context to fix it without reading code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Key path such as `targets[2].interval`.
    pub key: Option<String>,
    pub message: String,
    /// The offending lines with a caret, when known.
    pub snippet: Option<String>,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
            snippet: None,
        }
    }
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(&name, format!("cannot read: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &name, base)
}

/// The parser's default budget (250,000 nodes) refuses a config of ~16,000 targets. A node or
/// event takes at least a byte of text unless it comes from an alias, and aliases keep their
/// own caps, so limits that grow with the file still stop expansion bombs.
fn options_for(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Deserializes strict YAML, mapping any error to file, line, column and key path.
fn deserialize<T: serde::de::DeserializeOwned>(text: &str, name: &str) -> Result<T, ConfigError> {
    let mut key = String::new();
    let parsed: Result<T, _> =
        serde_saphyr::with_deserializer_from_str_with_options(text, options_for(text), |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                key = e.path().to_string();
                e.into_inner()
            })
        });
    parsed.map_err(|e| {
        let loc = e.location();
        let rendered = e.to_string();
        // saphyr renders "error: line L column C: message" then a snippet; keep both parts.
        let mut lines = rendered.lines();
        let head = lines.next().unwrap_or_default();
        let message = head
            .split_once(": ")
            .map(|(_, rest)| rest.split_once(": ").map_or(rest, |(_, m)| m))
            .unwrap_or(head)
            .to_owned();
        let snippet: Vec<&str> = lines.collect();
        ConfigError {
            file: name.to_owned(),
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            key: (!key.is_empty() && key != ".").then(|| key.clone()),
            message,
            snippet: (!snippet.is_empty()).then(|| snippet.join("\n").replace("<input>", name)),
        }
    })
}

/// Every channel a target names must be in `known`.
pub fn check_channel_refs(
    text: &str,
    name: &str,
    targets: &[TargetSpec],
    known: &[&ChannelId],
) -> Result<(), ConfigError> {
    for (i, t) in targets.iter().enumerate() {
        if let Some(missing) = t.channels.iter().find(|c| !known.contains(c)) {
            return Err(ConfigError {
                file: name.to_owned(),
                line: locate_id(text, "targets", i),
                column: None,
                key: Some(format!("targets[{i}].channels")),
                message: format!(
                    "target {:?} names channel {missing:?}, which is not defined under `channels`",
                    t.id.as_str()
                ),
                snippet: None,
            });
        }
    }
    Ok(())
}

/// What the API checks beyond decoding, checked here too (the config is loaded into the store
/// without going through the API): names free of control characters, and custom heartbeat
/// tokens long and URL-safe.
fn check_inputs(
    text: &str,
    name: &str,
    targets: &[TargetSpec],
    channels: &[ChannelSpec],
) -> Result<(), ConfigError> {
    let refused = |section: &str, i: usize, field: &str, why: String| ConfigError {
        file: name.to_owned(),
        line: locate_id(text, section, i),
        column: None,
        key: Some(format!("{section}[{i}].{field}")),
        message: why,
        snippet: None,
    };
    const NAME: &str =
        "must not contain control characters (line breaks, ESC, NUL) or direction overrides";
    for (i, t) in targets.iter().enumerate() {
        if !is_printable_text(&t.name) {
            return Err(refused("targets", i, "name", NAME.to_owned()));
        }
        if let CheckSpec::Heartbeat(hb) = &t.check
            && let Some(token) = &hb.token
        {
            check_heartbeat_token(token)
                .map_err(|why| refused("targets", i, "heartbeat.token", why))?;
        }
    }
    if let Some(i) = channels.iter().position(|c| !is_printable_text(&c.name)) {
        return Err(refused("channels", i, "name", NAME.to_owned()));
    }
    Ok(())
}

/// The resources of a `netmon apply -f` file: the config file's `channels:` and `targets:`
/// shapes, nothing else (the tenant comes from the API key).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub channels: Vec<ChannelSpec>,
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
}

/// Parses an apply file. Channel references are checked by the caller, which also knows the
/// channels that already exist.
pub fn parse_resources(text: &str, name: &str) -> Result<Resources, ConfigError> {
    let resources: Resources = deserialize(text, name)?;
    check_unique_ids(text, name)?;
    check_inputs(text, name, &resources.targets, &resources.channels)?;
    Ok(resources)
}

pub fn load_resources(path: &Path) -> Result<(Resources, String), ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(&name, format!("cannot read: {e}")))?;
    parse_resources(&text, &name).map(|r| (r, text))
}

/// Parses config text; `base` is the directory relative paths are resolved against.
pub fn parse(text: &str, name: &str, base: &Path) -> Result<Config, ConfigError> {
    let file: ConfigFile = deserialize(text, name)?;
    check_unique_ids(text, name)?;
    let known: Vec<&ChannelId> = file.channels.iter().map(|c| &c.id).collect();
    check_channel_refs(text, name, &file.targets, &known)?;
    check_inputs(text, name, &file.targets, &file.channels)?;

    if file.history.raw_retention.as_duration() < std::time::Duration::from_secs(2 * 3600) {
        return Err(ConfigError {
            file: name.to_owned(),
            line: None,
            column: None,
            key: Some("history.raw_retention".to_owned()),
            message: format!(
                "is {}; it must be at least 2h, so an hour is rolled up before its raw results go",
                file.history.raw_retention
            ),
            snippet: None,
        });
    }
    let store = file
        .store
        .map(|p| if p.is_absolute() { p } else { base.join(p) })
        .unwrap_or_else(|| base.join("netmon.db"));
    Ok(Config {
        location: file.location.unwrap_or_else(|| "local".to_owned()),
        listen: file
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        store,
        tenant: file.tenant.unwrap_or_else(TenantId::default_tenant),
        public_url: file.public_url,
        probe: file.probe,
        api: file.api,
        history: file.history,
        channels: file.channels,
        targets: file.targets,
    })
}

#[derive(Deserialize)]
struct IdsOnly {
    #[serde(default)]
    targets: Vec<IdOnly>,
    #[serde(default)]
    channels: Vec<IdOnly>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: serde_saphyr::Spanned<String>,
}

fn check_unique_ids(text: &str, name: &str) -> Result<(), ConfigError> {
    let Ok(ids) = serde_saphyr::from_str_with_options::<IdsOnly>(text, options_for(text)) else {
        return Ok(()); // the strict parse already succeeded; nothing more to learn here
    };
    for (section, list) in [("targets", &ids.targets), ("channels", &ids.channels)] {
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for (i, item) in list.iter().enumerate() {
            let line = item.id.referenced.line();
            if let Some(first) = seen.insert(item.id.value.as_str(), line) {
                return Err(ConfigError {
                    file: name.to_owned(),
                    line: Some(line),
                    column: Some(item.id.referenced.column()),
                    key: Some(format!("{section}[{i}].id")),
                    message: format!(
                        "duplicate id {:?}: already used on line {first}",
                        item.id.value
                    ),
                    snippet: None,
                });
            }
        }
    }
    Ok(())
}

fn locate_id(text: &str, section: &str, index: usize) -> Option<u64> {
    let ids = serde_saphyr::from_str_with_options::<IdsOnly>(text, options_for(text)).ok()?;
    let list = if section == "targets" {
        ids.targets
    } else {
        ids.channels
    };
    list.get(index).map(|i| i.id.referenced.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        parse(text, "netmon.yaml", Path::new("/etc/netmon")).expect_err("should fail")
    }

    #[test]
    fn loads_a_full_file() {
        let cfg = parse(
            "location: lab\nlisten: 127.0.0.1:9999\nstore: data/n.db\nchannels:\n  - id: ops\n    webhook: {url: 'http://127.0.0.1:1/hook'}\ntargets:\n  - id: web\n    http: {url: 'https://example.com'}\n    interval: 30s\n    channels: [ops]\n",
            "netmon.yaml",
            Path::new("/etc/netmon"),
        )
        .unwrap();
        assert_eq!(cfg.location, "lab");
        assert_eq!(cfg.listen.port(), 9999);
        assert_eq!(cfg.store, PathBuf::from("/etc/netmon/data/n.db"));
        assert_eq!(cfg.targets.len(), 1);
        assert_eq!(cfg.channels.len(), 1);
        assert!(cfg.probe.allow_private && !cfg.probe.allow_link_local);
        assert_eq!(cfg.public_url, None);
        let cfg = parse(
            "public_url: https://mon.example.com/netmon\n",
            "n.yaml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            cfg.public_url.map(String::from).as_deref(),
            Some("https://mon.example.com/netmon/")
        );
        let e = err("public_url: ftp://x\n");
        assert!(e.message.contains("http or https"), "{e}");
    }

    /// The parser's default node budget refused configs above ~16,000 targets (and skipped the
    /// duplicate-id check quietly); the budget now grows with the file.
    #[test]
    fn a_config_of_twenty_thousand_targets_loads_and_duplicates_are_still_found() {
        let mut yaml = String::from("targets:\n");
        for i in 0..20_000 {
            yaml.push_str(&format!(
                "  - id: t{i}\n    http: {{url: 'http://10.0.0.1/{i}'}}\n    interval: 60s\n"
            ));
        }
        let cfg = parse(&yaml, "big.yaml", Path::new("/")).expect("a big config loads");
        assert_eq!(cfg.targets.len(), 20_000);
        yaml.push_str("  - id: t7\n    tcp: {host: a, port: 1}\n");
        let e = err(&yaml);
        assert!(e.message.contains("duplicate id \"t7\""), "{e}");
    }

    /// A growing budget must not let an alias bomb expand: a few lines, millions of nodes.
    #[test]
    fn an_alias_bomb_is_refused() {
        let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = format!("*a{}", i - 1);
            let row = [prev.as_str(); 10].join(", ");
            yaml.push_str(&format!("a{i}: &a{i} [{row}]\n"));
        }
        let expanded =
            serde_saphyr::from_str_with_options::<serde_json::Value>(&yaml, options_for(&yaml));
        let e = expanded.expect_err("ten million nodes from eight lines");
        assert!(e.to_string().contains("budget"), "{e}");
    }

    /// The config is loaded into the store without the API: it refuses what the API refuses.
    #[test]
    fn names_and_heartbeat_tokens_are_checked_as_the_api_does() {
        for (yaml, key) in [
            (
                "targets:\n  - id: ok\n    tcp: {host: a, port: 1}\n  - id: web\n    name: \"two\\nlines\"\n    tcp: {host: a, port: 1}\n",
                "targets[1].name",
            ),
            (
                "targets:\n  - id: web\n    name: \"\\e[31mred\"\n    tcp: {host: a, port: 1}\n",
                "targets[0].name",
            ),
            (
                "channels:\n  - id: ops\n    name: \"nul\\0\"\n    log: {}\n",
                "channels[0].name",
            ),
            (
                "targets:\n  - id: cron\n    heartbeat: {period: 1h, token: '../../v1/targets'}\n",
                "targets[0].heartbeat.token",
            ),
            (
                "targets:\n  - id: cron\n    heartbeat: {period: 1h, token: a}\n",
                "targets[0].heartbeat.token",
            ),
        ] {
            let e = err(yaml);
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.line.is_some(), "{e}");
            let e = parse_resources(yaml, "apply.yaml").expect_err("apply files too");
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
        }
        parse(
            "targets:\n  - id: web\n    name: 'Web – Prod (ünï)'\n    tcp: {host: a, port: 1}\n  - id: cron\n    heartbeat: {period: 1h, token: tok-0123456789abcdef}\n",
            "netmon.yaml",
            Path::new("/"),
        )
        .expect("printable names and good tokens load");
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let e = err("targets:\n  - id: web\n    http: {url: 'https://x'}\n    intervall: 30s\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("unknown field `intervall`"), "{e}");
        assert_eq!(e.key.as_deref(), Some("targets[0].intervall"));
        let shown = e.to_string();
        assert!(
            shown.starts_with("netmon.yaml:4:5: targets[0].intervall: unknown field"),
            "{shown}"
        );
    }

    #[test]
    fn raw_retention_defaults_to_48h_and_must_be_at_least_2h() {
        let cfg = parse("location: lab\n", "n.yaml", Path::new("/")).unwrap();
        assert_eq!(
            cfg.history.raw_retention,
            HumanDuration::from_secs(48 * 3600)
        );
        let cfg = parse("history: {raw_retention: 6h}\n", "n.yaml", Path::new("/")).unwrap();
        assert_eq!(
            cfg.history.raw_retention,
            HumanDuration::from_secs(6 * 3600)
        );
        let e = err("history:\n  raw_retention: 90m\n");
        assert_eq!(e.key.as_deref(), Some("history.raw_retention"));
        assert!(e.message.contains("at least 2h"), "{e}");
        let e = err("history: {keep: 1d}\n");
        assert!(e.message.contains("unknown field `keep`"), "{e}");
    }

    #[test]
    fn bad_interval() {
        let e = err("targets:\n  - id: web\n    http: {url: 'https://x'}\n    interval: 2s\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("targets[0].interval"));
        assert!(e.message.contains("out of range"), "{e}");
    }

    #[test]
    fn bad_condition_gives_line_and_column_in_expression() {
        let e = err(
            "targets:\n  - id: web\n    http: {url: 'https://x'}\n    conditions:\n      - '[STATUS] == 200'\n      - '[STATUS] =! 200'\n",
        );
        assert_eq!(e.line, Some(6));
        assert_eq!(e.key.as_deref(), Some("targets[0].conditions[1]"));
        assert!(e.message.contains("column"), "{e}");
    }

    #[test]
    fn duplicate_target_id() {
        let e = err(
            "targets:\n  - id: web\n    http: {url: 'https://x'}\n  - id: web\n    tcp: {host: x, port: 1}\n",
        );
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("targets[1].id"));
        assert!(
            e.message
                .contains("duplicate id \"web\": already used on line 2"),
            "{e}"
        );
    }

    #[test]
    fn apply_files_take_channels_and_targets_only() {
        let r = parse_resources(
            "channels:\n  - id: ops\n    log: {}\ntargets:\n  - id: web\n    http: {url: 'https://x'}\n",
            "monitors.yaml",
        )
        .unwrap();
        assert_eq!((r.channels.len(), r.targets.len()), (1, 1));
        let e = parse_resources("listen: 127.0.0.1:1\n", "monitors.yaml").unwrap_err();
        assert!(e.to_string().starts_with("monitors.yaml:1:1: "), "{e}");
        assert!(e.message.contains("unknown field `listen`"), "{e}");
        let e = parse_resources(
            "targets:\n  - id: a\n    tcp: {host: x, port: 1}\n  - id: a\n    tcp: {host: x, port: 2}\n",
            "m.yaml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn unknown_channel_reference() {
        let e = err("targets:\n  - id: web\n    http: {url: 'https://x'}\n    channels: [nope]\n");
        assert_eq!(e.key.as_deref(), Some("targets[0].channels"));
        assert!(e.message.contains("\"nope\""), "{e}");
    }

    #[test]
    fn provider_channels_parse_with_positioned_errors() {
        let cfg = parse(
            "channels:\n  - id: slack\n    slack: {url: 'https://hooks.slack.com/services/T/B/x'}\n  - id: pd\n    events: [opened, resolved]\n    default: true\n    pagerduty: {routing_key: k3y, severity: warning, region: eu}\n  - id: og\n    opsgenie: {api_key: k, priority: P1}\n  - id: tg\n    telegram: {bot_token: '1:a', chat_id: -100123, thread_id: 4}\n  - id: n\n    ntfy: {topic: alerts, server: 'https://ntfy.example.com'}\n  - id: po\n    pushover: {token: t, user: u, priority: 1}\n  - id: d\n    discord: {url: 'https://discord.com/api/webhooks/1/x'}\n  - id: t\n    teams: {url: 'https://x.logic.azure.com/w'}\n  - id: g\n    google_chat: {url: 'https://chat.googleapis.com/v1/spaces/A/messages?key=k'}\n  - id: m\n    mattermost: {url: 'https://mm.example.com/hooks/x', channel: town-square}\n",
            "netmon.yaml",
            Path::new("/etc/netmon"),
        )
        .unwrap();
        let kinds: Vec<&str> = cfg.channels.iter().map(|c| c.kind.name()).collect();
        assert_eq!(
            kinds,
            [
                "slack",
                "pagerduty",
                "opsgenie",
                "telegram",
                "ntfy",
                "pushover",
                "discord",
                "teams",
                "google_chat",
                "mattermost"
            ]
        );
        let pd = &cfg.channels[1];
        assert!(pd.default);
        assert!(pd.wants(netmon_core::events::EventType::IncidentResolved));
        assert!(!pd.wants(netmon_core::events::EventType::IncidentReminder));
        // A secret never shows in the Debug form the host may log.
        assert!(!format!("{cfg:?}").contains("k3y"));

        let e = err("channels:\n  - id: pd\n    pagerduty: {routing_key: k, severity: loud}\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key.as_deref(), Some("channels[0].pagerduty.severity"));
        let e = err("channels:\n  - id: n\n    ntfy:\n      topic: 'no spaces'\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("topic must be"), "{e}");
        let e = err(
            "channels:\n  - id: s\n    slack: {url: 'https://x'}\n    discord: {url: 'https://y'}\n",
        );
        assert!(e.message.contains("exactly one of"), "{e}");
        let e = err("channels:\n  - id: s\n    slack: {url: 'https://x', token: y}\n");
        assert!(e.message.contains("unknown field `token`"), "{e}");
    }

    #[test]
    fn the_readme_channel_examples_parse() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Channels\n")
            .nth(1)
            .expect("a Channels section");
        let yaml = section
            .split("```yaml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a yaml block");
        let r = parse_resources(yaml, "README.md").unwrap_or_else(|e| panic!("{e}"));
        let mut kinds: Vec<&str> = r.channels.iter().map(|c| c.kind.name()).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                "discord",
                "email",
                "google_chat",
                "log",
                "mattermost",
                "ntfy",
                "opsgenie",
                "pagerduty",
                "pushover",
                "slack",
                "teams",
                "telegram",
                "webhook"
            ]
        );
    }

    #[test]
    fn not_yaml_at_all() {
        let e = err("targets: [\n");
        assert!(e.line.is_some(), "{e}");
        let e = err("- just\n- a list\n");
        assert!(!e.message.is_empty());
    }
}
