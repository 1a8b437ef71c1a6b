//! Gatus config → netmon. Field names and defaults follow Gatus's README (endpoints,
//! external-endpoints, alerting, maintenance, client). Every key is either converted, reported
//! as not carried over, or listed as ignored; unknown keys are reported too.

use std::collections::BTreeMap;
use std::time::Duration;

use netmon_core::channel::ChannelSpec;
use netmon_core::conditions::Condition;
use netmon_core::target::{self, TargetSpec};
use serde_json::{Map, Value, json};

use super::{Converted, Ids, NO_ALERTS, Report, clamp, human, no_alerts_channel, quoted, tag};
use crate::client::CliError;

/// Top-level keys that configure Gatus itself (its web server, dashboard, storage, metrics):
/// nothing netmon checks or notifies depends on them.
const SERVER_KEYS: &[&str] = &[
    "web",
    "ui",
    "storage",
    "metrics",
    "security",
    "announcements",
    "concurrency",
    "disable-monitoring-lock",
    "skip-invalid-config-update",
];

/// Top-level keys that change what Gatus checks or when it alerts, with no netmon equivalent.
const EFFECTFUL_KEYS: &[&str] = &["connectivity", "remote", "tunneling"];

/// Gatus's alert defaults (README, "Alerting").
const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;

pub(crate) fn convert(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Converted, CliError> {
    let (text, unset) = expand_env(text, env);
    let root: Value = serde_saphyr::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{file} is not a Gatus config: not YAML: {e}")))?;
    let Value::Object(root) = root else {
        return Err(CliError::Usage(format!(
            "{file} is not a Gatus config: expected a mapping with `endpoints`, found {}",
            kind_of(&root)
        )));
    };
    if !["endpoints", "external-endpoints", "suites"]
        .iter()
        .any(|k| root.contains_key(*k))
    {
        return Err(CliError::Usage(format!(
            "{file} is not a Gatus config: it has no `endpoints` (keys found: {})",
            root.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut c = Converter::default();
    for name in unset {
        c.out.report.skip(
            format!("${name}"),
            "this environment variable is not set here, so it was expanded to nothing as Gatus \
             would do: set it and import again",
        );
    }
    c.run(root);
    Ok(c.out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Go's `os.ExpandEnv` after Gatus turns `$$` into a literal `$`: `$NAME` and `${NAME}` are
/// replaced (by nothing when unset). Returns the names that were not set.
fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unset: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, used) = shell_name(after);
        match name {
            Some(name) => {
                match env(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        if !unset.iter().any(|u| u == name) {
                            unset.push(name.to_owned());
                        }
                    }
                }
                rest = &after[used..];
            }
            // `${` without `}` and `${}` are eaten, as Go does; a lone `$` stays.
            None if used > 0 => rest = &after[used..],
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, unset)
}

/// Go's `getShellName`: the variable name after `$` and how many bytes it used.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let special = |b: u8| b"*#$@!?-".contains(&b) || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match bytes.first() {
        None => (None, 0),
        Some(b'{') => {
            if bytes.len() > 2 && special(bytes[1]) && bytes[2] == b'}' {
                return (Some(&s[1..2]), 3);
            }
            match s.find('}') {
                Some(1) => (None, 2),
                Some(end) => (Some(&s[1..end]), end + 1),
                None => (None, 1),
            }
        }
        Some(&b) if special(b) => (Some(&s[..1]), 1),
        Some(_) => {
            let len = s
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if len == 0 {
                (None, 0)
            } else {
                (Some(&s[..len]), len)
            }
        }
    }
}

/// A Go duration (`300ms`, `1h30m`, `1.5h`): what Gatus accepts for intervals and timeouts.
fn go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * nanos;
    }
    (total.is_finite() && total < 1e19).then(|| Duration::from_nanos(total as u64))
}

/// The fields of one mapping, taken one by one; what is left at the end was not understood.
struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    fn new(v: Value) -> Option<Self> {
        match v {
            Value::Object(map) => Some(Self { map }),
            _ => None,
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    fn string(&mut self, key: &str) -> Option<String> {
        self.take(key).and_then(|v| match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        self.take(key).and_then(|v| match v {
            Value::Bool(b) => Some(b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
    }

    fn number(&mut self, key: &str) -> Option<u64> {
        self.take(key).and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    fn duration(&mut self, key: &str) -> Option<Result<Duration, String>> {
        self.take(key).map(|v| match &v {
            Value::String(s) => go_duration(s).ok_or_else(|| s.clone()),
            other => Err(other.to_string()),
        })
    }

    fn strings_map(&mut self, key: &str) -> BTreeMap<String, String> {
        match self.take(key) {
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    fn list(&mut self, key: &str) -> Vec<Value> {
        match self.take(key) {
            Some(Value::Array(items)) => items,
            Some(one) => vec![one],
            None => Vec::new(),
        }
    }

    fn leftover(self) -> Vec<String> {
        self.map.into_iter().map(|(k, _)| k).collect()
    }
}

/// One alert of an endpoint after the provider's `default-alert` was applied.
#[derive(Debug, Clone)]
struct Alert {
    kind: String,
    enabled: bool,
    failure_threshold: u32,
    success_threshold: u32,
    reminder: Option<Duration>,
    description: Option<String>,
    provider_override: Option<Value>,
}

/// `alerting.custom` (and its group overrides) as netmon webhook channels.
#[derive(Debug, Default)]
struct Custom {
    /// Channel for endpoints without a group override; `None` when it could not be made.
    default_channel: Option<String>,
    by_group: BTreeMap<String, String>,
}

#[derive(Default)]
struct Converter {
    out: Converted,
    ids: Ids,
    channel_ids: Ids,
    /// Each provider's `default-alert`, by provider name.
    default_alerts: BTreeMap<String, Map<String, Value>>,
    custom: Custom,
    /// Providers configured under `alerting` that netmon has no channel for, with the endpoints
    /// whose alerts of that type were dropped.
    unsupported: BTreeMap<String, Vec<String>>,
    no_alert_targets: Vec<String>,
}

impl Converter {
    fn run(&mut self, mut root: Map<String, Value>) {
        if let Some(alerting) = root.remove("alerting") {
            self.alerting(alerting);
        }
        if let Some(Value::Array(endpoints)) = root.remove("endpoints") {
            for (i, e) in endpoints.into_iter().enumerate() {
                self.endpoint(i, e);
            }
        }
        if let Some(Value::Array(endpoints)) = root.remove("external-endpoints") {
            for (i, e) in endpoints.into_iter().enumerate() {
                self.external_endpoint(i, e);
            }
        }
        if let Some(suites) = root.remove("suites") {
            let items = match suites {
                Value::Array(items) => items,
                other => vec![other],
            };
            for (i, s) in items.iter().enumerate() {
                let name = s
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("suites[{i}]"), |n| quoted("suite", n));
                self.out.report.skip(
                    name,
                    "suites (endpoints run in sequence with a shared context) have no netmon \
                     equivalent",
                );
            }
        }
        if root.remove("maintenance").is_some() {
            self.out.report.skip(
                "maintenance",
                "recurring maintenance windows are not carried over: netmon's windows are one-off \
                 (POST /v1/maintenance with starts_at and ends_at)",
            );
        }
        let mut server = Vec::new();
        for key in root.keys() {
            if SERVER_KEYS.contains(&key.as_str()) {
                server.push(format!("`{key}`"));
            } else if EFFECTFUL_KEYS.contains(&key.as_str()) {
                self.out.report.skip(
                    format!("`{key}`"),
                    "not carried over (netmon has no equivalent)",
                );
            } else {
                // Gatus reads its config leniently: a key it does not know (often an anchor
                // holder such as `x-defaults`) does nothing there either.
                self.out
                    .report
                    .ignore(format!("`{key}`"), "not a Gatus setting");
            }
        }
        if !server.is_empty() {
            self.out.report.ignore(
                server.join(", "),
                "Gatus server and dashboard settings; netmon up has its own config",
            );
        }
        for (provider, endpoints) in std::mem::take(&mut self.unsupported) {
            let used = if endpoints.is_empty() {
                String::new()
            } else {
                format!(
                    "; alerts of this type dropped from {}",
                    endpoints.join(", ")
                )
            };
            self.out.report.skip(
                format!("alerting.{provider}"),
                format!("netmon has no {provider} channel (it has webhook and log channels){used}"),
            );
        }
        if !self.no_alert_targets.is_empty() {
            self.out.channels.push(no_alerts_channel());
        }
    }

    fn alerting(&mut self, alerting: Value) {
        let Value::Object(providers) = alerting else {
            self.out
                .report
                .skip("alerting", "expected a mapping of providers");
            return;
        };
        for (name, config) in providers {
            let mut fields = Fields::new(config).unwrap_or(Fields { map: Map::new() });
            if let Some(Value::Object(defaults)) = fields.take("default-alert") {
                self.default_alerts.insert(name.clone(), defaults);
            }
            if name == "custom" {
                self.custom_provider(fields);
            } else {
                self.unsupported.entry(name).or_default();
            }
        }
    }

    fn custom_provider(&mut self, mut fields: Fields) {
        let overrides = fields.list("overrides");
        let base = fields.map.clone();
        self.custom.default_channel =
            self.webhook_channel("custom", "Gatus custom alerts", "alerting.custom", fields);
        for (i, o) in overrides.into_iter().enumerate() {
            let Some(mut o) = Fields::new(o) else {
                continue;
            };
            let Some(group) = o.string("group") else {
                self.out.report.skip(
                    format!("alerting.custom.overrides[{i}]"),
                    "an override without `group` applies to nothing",
                );
                continue;
            };
            let mut merged = base.clone();
            merged.extend(o.map);
            let subject = format!("alerting.custom.overrides[{i}] (group {group:?})");
            if let Some(id) = self.webhook_channel(
                &format!("custom-{group}"),
                &format!("Gatus custom alerts for group {group}"),
                &subject,
                Fields { map: merged },
            ) {
                self.custom.by_group.insert(group, id);
            }
        }
    }

    /// A webhook channel from a `custom` provider configuration; the channel id, or `None`
    /// (reported) when it cannot be carried over.
    fn webhook_channel(
        &mut self,
        wanted_id: &str,
        name: &str,
        subject: &str,
        mut f: Fields,
    ) -> Option<String> {
        let report = &mut self.out.report;
        let url = f.string("url");
        let method = f.string("method").unwrap_or_else(|| "GET".to_owned());
        let body = f.string("body");
        let headers = f.strings_map("headers");
        f.take("placeholders");
        f.take("default-alert");
        if f.take("client").is_some() {
            report.skip(
                subject,
                "`client` is not carried over (netmon's webhook client)",
            );
        }
        for key in f.leftover() {
            report.skip(subject, format!("`{key}` is not carried over"));
        }
        let Some(url) = url else {
            report.skip(subject, "no `url`: not carried over");
            return None;
        };
        if url.contains('[') {
            report.skip(
                subject,
                "the url has placeholders such as [ENDPOINT_NAME]: netmon posts every event to \
                 one fixed url, so this provider was not carried over",
            );
            return None;
        }
        if !method.eq_ignore_ascii_case("POST") {
            report.skip(
                subject,
                format!(
                    "method {method} is not carried over: netmon's webhook always POSTs its JSON \
                     event"
                ),
            );
        }
        if body.is_some() {
            report.skip(
                subject,
                "the body template is not carried over: netmon's webhook sends its own JSON \
                 event (see events/samples), with the endpoint name, state and reason",
            );
        }
        let id = self.channel_ids.make(wanted_id, "custom");
        let spec = json!({"id": id, "name": name, "webhook": {"url": url, "headers": headers}});
        match serde_json::from_value::<ChannelSpec>(spec) {
            Ok(channel) => {
                self.out.channels.push(channel);
                Some(id)
            }
            Err(e) => {
                self.out
                    .report
                    .skip(subject, format!("not carried over: {e}"));
                None
            }
        }
    }

    fn alert(&self, v: Value) -> Option<Alert> {
        let mut f = Fields::new(v)?;
        let kind = f.string("type")?;
        // Gatus: fields the alert leaves out come from the provider's default-alert.
        if let Some(defaults) = self.default_alerts.get(&kind) {
            for (k, v) in defaults {
                f.map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let threshold = |n: Option<u64>, default| {
            n.and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Some(Alert {
            enabled: f.boolean("enabled").unwrap_or(true),
            failure_threshold: threshold(f.number("failure-threshold"), DEFAULT_FAILURE_THRESHOLD),
            success_threshold: threshold(f.number("success-threshold"), DEFAULT_SUCCESS_THRESHOLD),
            reminder: f
                .duration("minimum-reminder-interval")
                .and_then(Result::ok)
                .filter(|d| !d.is_zero()),
            description: f.string("description").filter(|d| !d.trim().is_empty()),
            provider_override: f.take("provider-override"),
            kind,
        })
    }

    /// Channels, thresholds and reminder of one endpoint from its alerts, into `spec`.
    fn alerts(
        &mut self,
        subject: &str,
        id: &str,
        group: Option<&str>,
        alerts: Vec<Value>,
        spec: &mut Map<String, Value>,
    ) {
        let mut channels: Vec<String> = Vec::new();
        let mut failure = Vec::new();
        let mut success = Vec::new();
        let mut reminders = Vec::new();
        for (i, raw) in alerts.into_iter().enumerate() {
            let Some(alert) = self.alert(raw) else {
                self.out
                    .report
                    .skip(format!("{subject} alerts[{i}]"), "an alert needs a `type`");
                continue;
            };
            if !alert.enabled {
                continue;
            }
            failure.push(alert.failure_threshold);
            success.push(alert.success_threshold);
            reminders.extend(alert.reminder);
            if alert.description.is_some() {
                self.out.report.ignore(
                    subject.to_owned(),
                    "alert descriptions are not carried over (netmon's notifications say which \
                     target, since when and why)",
                );
            }
            let channel = if alert.kind == "custom" {
                match (&alert.provider_override, group) {
                    (Some(o), _) => {
                        let mut merged = Map::new();
                        if let Some(base) = self.custom_base() {
                            merged = base;
                        }
                        if let Value::Object(o) = o {
                            merged.extend(o.clone());
                        }
                        self.webhook_channel(
                            &format!("custom-{id}"),
                            &format!("Gatus custom alerts for {id}"),
                            &format!("{subject} alerts[{i}].provider-override"),
                            Fields { map: merged },
                        )
                    }
                    (None, Some(g)) if self.custom.by_group.contains_key(g) => {
                        self.custom.by_group.get(g).cloned()
                    }
                    (None, _) => self.custom.default_channel.clone(),
                }
            } else {
                None
            };
            match channel {
                Some(c) => {
                    if !channels.contains(&c) {
                        channels.push(c);
                    }
                }
                None if alert.kind == "custom" => self.out.report.skip(
                    format!("{subject} alerts[{i}]"),
                    "type custom, but alerting.custom could not be carried over",
                ),
                None => self
                    .unsupported
                    .entry(alert.kind.clone())
                    .or_default()
                    .push(subject.to_owned()),
            }
        }
        let smallest = |v: &[u32], what: &str, report: &mut Report| -> Option<u32> {
            let min = v.iter().min().copied()?;
            if v.iter().any(|x| *x != min) {
                report.skip(
                    subject.to_owned(),
                    format!(
                        "alerts have different {what} thresholds ({}): netmon has one per target, \
                         the smallest ({min}) is used",
                        v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            Some(min.min(target::MAX_THRESHOLD))
        };
        if let Some(n) = smallest(&failure, "failure", &mut self.out.report) {
            spec.insert("failure_threshold".into(), json!(n));
        }
        if let Some(n) = smallest(&success, "success", &mut self.out.report) {
            spec.insert("success_threshold".into(), json!(n));
        }
        if let Some(r) = reminders.iter().min() {
            spec.insert(
                "reminder_interval".into(),
                json!(human((*r).max(Duration::from_secs(60)))),
            );
        }
        if channels.is_empty() {
            // No alert (or none carried over) notifies nobody in Gatus: netmon would notify every
            // channel of a target that names none, so these name a channel that only logs.
            self.no_alert_targets.push(id.to_owned());
            channels.push(NO_ALERTS.to_owned());
        }
        spec.insert("channels".into(), json!(channels));
    }

    fn custom_base(&self) -> Option<Map<String, Value>> {
        // Provider-level settings are not kept after building the channel; an override starts
        // from the channel that was built.
        let id = self.custom.default_channel.as_ref()?;
        let channel = self.out.channels.iter().find(|c| c.id.as_str() == id)?;
        let netmon_core::channel::ChannelKind::Webhook(w) = &channel.kind else {
            return None;
        };
        let mut m = Map::new();
        m.insert("url".into(), json!(w.url.as_str()));
        m.insert("method".into(), json!("POST"));
        m.insert("headers".into(), json!(w.headers));
        Some(m)
    }

    fn endpoint(&mut self, index: usize, raw: Value) {
        let Some(mut f) = Fields::new(raw) else {
            self.out
                .report
                .skip(format!("endpoints[{index}]"), "expected a mapping");
            return;
        };
        let name = f.string("name").unwrap_or_default();
        let group = f.string("group").filter(|g| !g.trim().is_empty());
        let subject = if name.is_empty() {
            format!("endpoints[{index}]")
        } else {
            quoted("endpoint", &key(group.as_deref(), &name))
        };
        let report_subject = subject.clone();
        let skip = |c: &mut Self, why: &str| c.out.report.skip(report_subject.clone(), why);
        if name.trim().is_empty() {
            skip(self, "an endpoint needs a `name`");
            return;
        }
        let url = f.string("url").unwrap_or_default();
        let dns = f.take("dns");
        let kind = if dns.is_some() {
            Kind::Dns
        } else {
            match url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
                Some(s) if s == "http" || s == "https" => Kind::Http,
                Some(s) if s == "tcp" => Kind::Tcp,
                Some(s) => {
                    skip(
                        self,
                        &format!(
                            "{s}:// endpoints have no netmon check (netmon checks http(s), tcp, \
                             dns and heartbeats)"
                        ),
                    );
                    return;
                }
                None => {
                    skip(self, "the url has no scheme such as https://");
                    return;
                }
            }
        };
        let graphql = f.boolean("graphql") == Some(true);
        let mut spec = Map::new();
        let wanted = key(group.as_deref(), &name);
        let id = self.ids.make(&wanted, &name);
        spec.insert("id".into(), json!(id));
        spec.insert("name".into(), json!(name.trim()));
        let mut tags: Vec<String> = group.as_deref().and_then(tag).into_iter().collect();
        for (k, v) in f.strings_map("extra-labels") {
            match tag(&format!("{k}:{v}")) {
                Some(t) => tags.push(t),
                None => self.out.report.skip(
                    subject.clone(),
                    format!("extra label {k:?} cannot be a netmon tag"),
                ),
            }
        }
        if !tags.is_empty() {
            spec.insert("tags".into(), json!(tags));
        }
        if let Some(enabled) = f.boolean("enabled") {
            spec.insert("enabled".into(), json!(enabled));
        }

        // interval and timeout
        let interval = match f.duration("interval") {
            None => Duration::from_secs(60),
            Some(Ok(d)) if d.is_zero() => Duration::from_secs(60),
            Some(Ok(d)) => d,
            Some(Err(bad)) => {
                skip(
                    self,
                    &format!("interval {bad} is not a duration such as 30s"),
                );
                return;
            }
        };
        let interval = clamp(
            &mut self.out.report,
            &subject,
            "interval",
            interval,
            target::MIN_INTERVAL.as_duration(),
            target::MAX_INTERVAL.as_duration(),
        );
        spec.insert("interval".into(), json!(human(interval)));

        let mut client = f
            .take("client")
            .and_then(Fields::new)
            .unwrap_or(Fields { map: Map::new() });
        let timeout = match client.duration("timeout") {
            None => Duration::from_secs(10),
            Some(Ok(d)) if d.is_zero() => Duration::from_secs(10),
            Some(Ok(d)) => d,
            Some(Err(bad)) => {
                skip(
                    self,
                    &format!("client.timeout {bad} is not a duration such as 10s"),
                );
                return;
            }
        };
        let mut timeout = clamp(
            &mut self.out.report,
            &subject,
            "client.timeout",
            timeout,
            target::MIN_TIMEOUT.as_duration(),
            target::MAX_TIMEOUT.as_duration(),
        );
        if timeout >= interval {
            let shorter = interval.saturating_sub(Duration::from_secs(1));
            self.out.report.skip(
                subject.clone(),
                format!(
                    "timeout {} is not shorter than the interval {}: netmon needs that, {} is used",
                    human(timeout),
                    human(interval),
                    human(shorter)
                ),
            );
            timeout = shorter;
        }
        spec.insert("timeout".into(), json!(human(timeout)));

        // client settings
        let insecure = client.boolean("insecure").unwrap_or(false);
        let ignore_redirect = client.boolean("ignore-redirect").unwrap_or(false);
        for (key, why) in [
            (
                "oauth2",
                "netmon cannot fetch OAuth2 tokens, so this check would fail",
            ),
            (
                "identity-aware-proxy",
                "netmon cannot fetch Identity-Aware-Proxy tokens, so this check would fail",
            ),
            (
                "tls",
                "netmon has no client certificates (mTLS), so this check would fail",
            ),
            ("tunnel", "netmon cannot probe through an SSH tunnel"),
        ] {
            if client.take(key).is_some() {
                skip(self, &format!("client.{key}: {why}"));
                return;
            }
        }
        for (key, why) in [
            (
                "dns-resolver",
                "netmon resolves names with the system resolver",
            ),
            ("proxy-url", "netmon connects directly, without a proxy"),
            ("store-cookies", "netmon keeps no cookies between probes"),
            ("network", "applies to ICMP, which netmon does not check"),
        ] {
            if client.take(key).is_some() {
                self.out.report.skip(
                    subject.clone(),
                    format!("client.{key} is not carried over: {why}"),
                );
            }
        }
        for key in client.leftover() {
            self.out
                .report
                .skip(subject.clone(), format!("client.{key} is not carried over"));
        }

        // the check
        let method = f.string("method");
        let mut headers = f.strings_map("headers");
        let body = f.string("body");
        let conditions: Vec<String> = f
            .list("conditions")
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect();
        let mut expected = Vec::new();
        match kind {
            Kind::Http => {
                let mut http = Map::new();
                http.insert("url".into(), json!(url));
                if let Some(m) = method {
                    http.insert("method".into(), json!(m));
                }
                let body = match body {
                    Some(b) => match endpoint_body(&b, &name, group.as_deref(), &url) {
                        Ok(b) => Some(b),
                        Err(why) => {
                            skip(self, &why);
                            return;
                        }
                    },
                    None => None,
                };
                let body = if graphql {
                    if !headers
                        .keys()
                        .any(|k| k.eq_ignore_ascii_case("content-type"))
                    {
                        headers.insert("Content-Type".into(), "application/json".into());
                    }
                    Some(json!({"query": body.unwrap_or_default()}).to_string())
                } else {
                    body
                };
                if let Some(b) = body.filter(|b| !b.is_empty()) {
                    http.insert("body".into(), json!(b));
                }
                if !headers.is_empty() {
                    http.insert("headers".into(), json!(headers));
                }
                if insecure {
                    http.insert("verify_tls".into(), json!(false));
                }
                if ignore_redirect {
                    http.insert("follow_redirects".into(), json!(false));
                }
                spec.insert("http".into(), Value::Object(http));
            }
            Kind::Tcp => {
                let Some((host, port)) = host_port(&url["tcp://".len()..]) else {
                    skip(self, "the url is not tcp://host:port");
                    return;
                };
                spec.insert("tcp".into(), json!({"host": host, "port": port}));
                if body.is_some() {
                    self.out.report.skip(
                        subject.clone(),
                        "the body sent to the TCP port is not carried over: netmon's tcp check \
                         only connects",
                    );
                }
                if method.is_some() || !headers.is_empty() {
                    self.out
                        .report
                        .ignore(subject.clone(), "method and headers do not apply to tcp");
                }
            }
            Kind::Dns => {
                let mut d = dns
                    .and_then(Fields::new)
                    .unwrap_or(Fields { map: Map::new() });
                let name = d.string("query-name").unwrap_or_default();
                let record = d
                    .string("query-type")
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                for key in d.leftover() {
                    self.out
                        .report
                        .skip(subject.clone(), format!("dns.{key} is not carried over"));
                }
                let resolver = url.trim();
                let resolver = if resolver.parse::<std::net::IpAddr>().is_ok()
                    || resolver.parse::<std::net::SocketAddr>().is_ok()
                {
                    resolver.to_owned()
                } else {
                    skip(
                        self,
                        &format!(
                            "the DNS server {resolver:?} is not an IP address (netmon's dns check \
                             needs one)"
                        ),
                    );
                    return;
                };
                spec.insert(
                    "dns".into(),
                    json!({"name": name.trim_end_matches('.'), "record_type": record,
                           "resolver": resolver}),
                );
            }
        }

        // conditions
        let mut kept = Vec::new();
        for raw in &conditions {
            match condition(raw, kind) {
                Ok(Converted1::Condition(c, note)) => {
                    if let Some(note) = note {
                        self.out
                            .report
                            .skip(format!("{subject} condition {raw:?}"), note);
                    }
                    kept.push(c.source().to_owned());
                }
                Ok(Converted1::Expected(answer)) => expected.push(answer),
                Err(why) => self
                    .out
                    .report
                    .skip(format!("{subject} condition {raw:?}"), why),
            }
        }
        if !expected.is_empty()
            && let Some(Value::Object(d)) = spec.get_mut("dns")
        {
            d.insert("expected".into(), json!(expected));
        }
        if kept.is_empty() && expected.is_empty() && !conditions.is_empty() {
            self.out.report.skip(
                subject.clone(),
                "none of its conditions was carried over: netmon's defaults for the check kind \
                 apply",
            );
        }
        if !kept.is_empty() {
            spec.insert("conditions".into(), json!(kept));
        }

        // alerts, maintenance, the rest
        let alerts = f.list("alerts");
        self.alerts(&subject, &id, group.as_deref(), alerts, &mut spec);
        if !f.list("maintenance-windows").is_empty() {
            self.out.report.skip(
                subject.clone(),
                "maintenance-windows are not carried over: netmon's windows are one-off (POST \
                 /v1/maintenance)",
            );
        }
        if f.take("ui").is_some() {
            self.out
                .report
                .ignore(subject.clone(), "`ui` (dashboard display options)");
        }
        for key in ["ssh", "store", "always-run"] {
            if f.take(key).is_some() {
                self.out
                    .report
                    .skip(subject.clone(), format!("`{key}` is not carried over"));
            }
        }
        for key in f.leftover() {
            self.out.report.skip(
                subject.clone(),
                format!("unknown key `{key}` is not carried over"),
            );
        }
        self.push_target(&subject, spec);
    }

    fn external_endpoint(&mut self, index: usize, raw: Value) {
        let Some(mut f) = Fields::new(raw) else {
            self.out
                .report
                .skip(format!("external-endpoints[{index}]"), "expected a mapping");
            return;
        };
        let name = f.string("name").unwrap_or_default();
        let group = f.string("group").filter(|g| !g.trim().is_empty());
        let subject = quoted("external endpoint", &key(group.as_deref(), &name));
        if name.trim().is_empty() {
            self.out
                .report
                .skip(format!("external-endpoints[{index}]"), "needs a `name`");
            return;
        }
        let period = f
            .take("heartbeat")
            .and_then(Fields::new)
            .and_then(|mut h| h.duration("interval"))
            .and_then(Result::ok)
            .filter(|d| !d.is_zero());
        let Some(period) = period else {
            self.out.report.skip(
                subject,
                "no heartbeat.interval: a netmon heartbeat needs to know how often pushes come",
            );
            return;
        };
        let period = clamp(
            &mut self.out.report,
            &subject,
            "heartbeat.interval",
            period,
            target::MIN_INTERVAL.as_duration(),
            Duration::from_secs(30 * 86_400),
        );
        let mut heartbeat = Map::new();
        heartbeat.insert("period".into(), json!(human(period)));
        heartbeat.insert("grace".into(), json!("0s"));
        // The Gatus token becomes the secret in /ping/{token} when it can be a path segment.
        if let Some(token) = f.string("token") {
            if netmon_core::target::check_heartbeat_token(&token).is_ok() {
                heartbeat.insert("token".into(), json!(token));
            } else {
                self.out.report.skip(subject.clone(), super::TOKEN_REPLACED);
            }
        }
        let mut spec = Map::new();
        let id = self.ids.make(&key(group.as_deref(), &name), &name);
        spec.insert("id".into(), json!(id));
        spec.insert("name".into(), json!(name.trim()));
        spec.insert("heartbeat".into(), Value::Object(heartbeat));
        if let Some(t) = group.as_deref().and_then(tag) {
            spec.insert("tags".into(), json!([t]));
        }
        if let Some(enabled) = f.boolean("enabled") {
            spec.insert("enabled".into(), json!(enabled));
        }
        let alerts = f.list("alerts");
        self.alerts(&subject, &id, group.as_deref(), alerts, &mut spec);
        // Heartbeats open and resolve on the first missed or received ping.
        spec.remove("failure_threshold");
        spec.remove("success_threshold");
        for key in f.leftover() {
            self.out.report.skip(
                subject.clone(),
                format!("unknown key `{key}` is not carried over"),
            );
        }
        self.push_target(&subject, spec);
    }

    fn push_target(&mut self, subject: &str, spec: Map<String, Value>) {
        match serde_json::from_value::<TargetSpec>(Value::Object(spec)) {
            Ok(t) => self.out.targets.push(t),
            Err(e) => {
                // Its channel list may have been the only user of the no-alerts channel.
                self.out
                    .report
                    .skip(subject.to_owned(), format!("not carried over: {e}"));
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Tcp,
    Dns,
}

/// Gatus's endpoint key: `group_name`, lower case, with ` /_.,#+&` as `-`.
fn key(group: Option<&str>, name: &str) -> String {
    let sanitize = |s: &str| {
        s.trim()
            .to_lowercase()
            .chars()
            .map(|c| if " /_.,#+&".contains(c) { '-' } else { c })
            .collect::<String>()
    };
    match group {
        Some(g) => format!("{}_{}", sanitize(g), sanitize(name)),
        None => sanitize(name),
    }
}

/// `host:port` or `[v6]:port`.
fn host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim_end_matches('/');
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// The request body with Gatus's static placeholders filled in.
fn endpoint_body(body: &str, name: &str, group: Option<&str>, url: &str) -> Result<String, String> {
    let b = body
        .replace("[ENDPOINT_NAME]", name)
        .replace("[ENDPOINT_GROUP]", group.unwrap_or(""))
        .replace("[ENDPOINT_URL]", url);
    for dynamic in ["[LOCAL_ADDRESS]", "[RANDOM_STRING_"] {
        if b.contains(dynamic) {
            return Err(format!(
                "the body uses {dynamic}…], which netmon cannot fill in, so the request would differ"
            ));
        }
    }
    Ok(b)
}

/// What became of one condition.
enum Converted1 {
    /// The condition, and a note when it means something slightly different.
    Condition(Condition, Option<String>),
    /// `[BODY] == ANSWER` on a DNS endpoint: an expected answer.
    Expected(String),
}

const GATUS_OPERATORS: [&str; 6] = [" == ", " != ", " <= ", " >= ", " > ", " < "];

/// Gatus's reading of a condition: the first operator (in Gatus's order) it contains, and the
/// two trimmed sides.
fn gatus_split(raw: &str) -> Option<(&str, &'static str, &str)> {
    GATUS_OPERATORS.iter().find_map(|op| {
        let (l, r) = raw.split_once(op)?;
        Some((l.trim(), op.trim(), r.trim()))
    })
}

fn is_placeholder_side(s: &str) -> bool {
    let s = s
        .strip_prefix("len(")
        .or_else(|| s.strip_prefix("has("))
        .unwrap_or(s);
    s.starts_with('[')
}

/// Upper-cases Gatus's case-insensitive placeholder names (`[body].x` → `[BODY].x`).
fn upper_placeholders(raw: &str) -> String {
    const NAMES: [&str; 8] = [
        "STATUS",
        "RESPONSE_TIME",
        "BODY",
        "HEADERS",
        "CERTIFICATE_EXPIRATION",
        "CONNECTED",
        "DNS_RCODE",
        "IP",
    ];
    let mut out = raw.to_owned();
    for name in NAMES {
        let lower = format!("[{}]", name.to_ascii_lowercase());
        let mut i = 0;
        while let Some(at) = out[i..].to_ascii_lowercase().find(&lower) {
            let start = i + at;
            let end = start + lower.len();
            out.replace_range(start..end, &format!("[{name}]"));
            i = end;
        }
    }
    out
}

fn condition(raw: &str, kind: Kind) -> Result<Converted1, String> {
    let upper = raw.to_ascii_uppercase();
    if upper.contains("[DOMAIN_EXPIRATION]") {
        return Err("netmon does not check domain expiration".to_owned());
    }
    if upper.contains("[CONTEXT]") {
        return Err("[CONTEXT] exists in suites only".to_owned());
    }
    let split = gatus_split(raw);
    if kind == Kind::Dns
        && let Some((l, "==", r)) = split
        && l.eq_ignore_ascii_case("[BODY]")
        && !r.starts_with("pat(")
        && !r.starts_with("any(")
        && !r.starts_with('[')
    {
        return Ok(Converted1::Expected(r.to_owned()));
    }
    let parsed = Condition::parse(raw).or_else(|first| {
        // Same meaning, netmon's spelling: upper-case placeholders, and the placeholder on the
        // left (`200 == [STATUS]`, `pat(x*) == [BODY]`).
        let mut candidate = upper_placeholders(raw);
        if let Some((l, op, r)) = gatus_split(&candidate)
            && !is_placeholder_side(l)
            && is_placeholder_side(r)
        {
            let flipped = match op {
                "<" => ">",
                ">" => "<",
                "<=" => ">=",
                ">=" => "<=",
                same => same,
            };
            candidate = format!("{r} {flipped} {l}");
        }
        Condition::parse(&candidate).map_err(|_| first)
    });
    let c = match parsed {
        Ok(c) => c,
        Err(e)
            if split
                .is_some_and(|(l, _, r)| !is_placeholder_side(l) && !is_placeholder_side(r)) =>
        {
            return Err(format!(
                "it compares two constants, so it never changes; netmon refuses it ({e})"
            ));
        }
        Err(e) => return Err(format!("netmon refuses it: {e}")),
    };
    let src = c.source().to_ascii_uppercase();
    match kind {
        Kind::Tcp
            if ["[STATUS]", "[BODY]", "[HEADERS]"]
                .iter()
                .any(|p| src.contains(p)) =>
        {
            return Err(
                "netmon's tcp check only connects: it has no status, body or headers".into(),
            );
        }
        Kind::Dns
            if [
                "[STATUS]",
                "[BODY]",
                "[HEADERS]",
                "[CERTIFICATE_EXPIRATION]",
            ]
            .iter()
            .any(|p| src.contains(p)) =>
        {
            return Err(
                "netmon's dns check has no body: only `[BODY] == ANSWER` (an expected answer), \
                 [DNS_RCODE], [CONNECTED] and [RESPONSE_TIME] carry over"
                    .into(),
            );
        }
        _ => {}
    }
    let quoted = split.is_some_and(|(_, _, r)| {
        (r.starts_with('"') && r.ends_with('"') && r.len() >= 2)
            || (r.starts_with("any(") && r.contains('"'))
            || r.starts_with("pat(\"")
    });
    let note = quoted.then(|| {
        "a quoted value: Gatus compares the quotes too (so this rarely matched), netmon compares \
         the text inside them"
            .to_owned()
    });
    Ok(Converted1::Condition(c, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_expands_as_gatus_does() {
        let env = |n: &str| match n {
            "HOST" => Some("example.com".to_owned()),
            "TOKEN" => Some("s3cr3t".to_owned()),
            "1" => Some("one".to_owned()),
            _ => None,
        };
        let table = [
            ("https://$HOST/x", "https://example.com/x", vec![]),
            ("https://${HOST}/x", "https://example.com/x", vec![]),
            ("price: $$5", "price: $5", vec![]),
            ("a $MISSING b", "a  b", vec!["MISSING"]),
            ("${MISSING}${MISSING}", "", vec!["MISSING"]),
            ("$1x", "onex", vec![]),
            ("cost $ 5", "cost $ 5", vec![]),
            ("end$", "end$", vec![]),
            ("${}", "", vec![]),
            ("${open", "open", vec![]),
            ("Bearer $TOKEN", "Bearer s3cr3t", vec![]),
        ];
        for (input, want, unset) in table {
            let (got, missing) = expand_env(input, &env);
            assert_eq!(got, want, "{input}");
            assert_eq!(missing, unset, "{input}");
        }
    }

    #[test]
    fn go_durations() {
        let table = [
            ("30s", Some(30_000)),
            ("1m30s", Some(90_000)),
            ("1.5h", Some(5_400_000)),
            ("300ms", Some(300)),
            ("2h45m", Some(9_900_000)),
            ("0", Some(0)),
            ("1d", None),
            ("-1s", None),
            ("", None),
            ("s", None),
            ("10", None),
        ];
        for (s, want) in table {
            assert_eq!(go_duration(s).map(|d| d.as_millis() as u64), want, "{s}");
        }
    }

    #[test]
    fn keys_follow_gatus() {
        assert_eq!(key(Some("Core"), "Front end"), "core_front-end");
        assert_eq!(key(None, "a.b/c_d#e+f&g,h"), "a-b-c-d-e-f-g-h");
    }

    fn conv(raw: &str, kind: Kind) -> Result<(String, Option<String>), String> {
        match condition(raw, kind)? {
            Converted1::Condition(c, note) => Ok((c.source().to_owned(), note)),
            Converted1::Expected(a) => Ok((format!("expected {a}"), None)),
        }
    }

    #[test]
    fn conditions_convert_or_say_why() {
        let ok = [
            ("[STATUS] == 200", Kind::Http, "[STATUS] == 200"),
            ("[status] == 200", Kind::Http, "[STATUS] == 200"),
            ("[Body].Status == UP", Kind::Http, "[BODY].Status == UP"),
            ("200 == [STATUS]", Kind::Http, "[STATUS] == 200"),
            ("500 > [STATUS]", Kind::Http, "[STATUS] < 500"),
            ("pat(2*) == [STATUS]", Kind::Http, "[STATUS] == pat(2*)"),
            (
                "any(200, 204) != [STATUS]",
                Kind::Http,
                "[STATUS] != any(200, 204)",
            ),
            ("[BODY] == not found", Kind::Http, "[BODY] == not found"),
            ("[CONNECTED] == true", Kind::Tcp, "[CONNECTED] == true"),
            (
                "[BODY] == 93.184.215.14",
                Kind::Dns,
                "expected 93.184.215.14",
            ),
            (
                "[DNS_RCODE] == NOERROR",
                Kind::Dns,
                "[DNS_RCODE] == NOERROR",
            ),
        ];
        for (raw, kind, want) in ok {
            assert_eq!(
                conv(raw, kind).map(|(s, _)| s),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
        let noted = conv("[BODY].status == \"UP\"", Kind::Http).expect("converts");
        assert!(noted.1.is_some_and(|n| n.contains("quotes")));
        let refused = [
            (
                "[DOMAIN_EXPIRATION] > 720h",
                Kind::Http,
                "domain expiration",
            ),
            ("[CONTEXT].id == 1", Kind::Http, "suites"),
            ("1 == 2", Kind::Http, "two constants"),
            ("raw == raw", Kind::Http, "two constants"),
            (
                "[RESPONSE_TIME] < potato",
                Kind::Http,
                "netmon refuses it: column",
            ),
            ("[STATUS] == 200", Kind::Tcp, "only connects"),
            ("[BODY] == pat(*x*)", Kind::Dns, "no body"),
        ];
        for (raw, kind, fragment) in refused {
            let e = conv(raw, kind).expect_err(raw);
            assert!(e.contains(fragment), "{raw}: {e}");
        }
    }
}
