//! Targets: what to check, how often, and what counts as healthy.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::conditions::Condition;
use crate::duration::HumanDuration;
use crate::ids::{ChannelId, TargetId, TenantId};

pub const MIN_INTERVAL: HumanDuration = HumanDuration::from_secs(10);
pub const MAX_INTERVAL: HumanDuration = HumanDuration::from_secs(24 * 3600);
pub const MIN_TIMEOUT: HumanDuration = HumanDuration::from_millis(100);
pub const MAX_TIMEOUT: HumanDuration = HumanDuration::from_secs(60);
/// The longest heartbeat period, grace after it, and reminder interval.
const MAX_HEARTBEAT_WAIT: HumanDuration = HumanDuration::from_secs(30 * 86_400);
pub const MAX_THRESHOLD: u32 = 100;
pub const MAX_REDIRECTS: u8 = 20;
/// Conditions per target: each is evaluated on every probe.
pub const MAX_CONDITIONS: usize = 50;

/// A target as its author writes it (config file, API body). The wire shape names the check kind
/// as a key (`http:`, `tcp:`, `dns:`, `heartbeat:`), so unknown keys can be refused everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TargetSpecWire", into = "TargetSpecWire")]
pub struct TargetSpec {
    pub id: TargetId,
    pub name: String,
    pub check: CheckSpec,
    pub interval: HumanDuration,
    pub timeout: HumanDuration,
    pub conditions: Vec<Condition>,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub reminder_interval: Option<HumanDuration>,
    /// Shown on the tenant's public status page.
    pub public: bool,
    /// Channels to notify; empty means every channel of the tenant.
    pub channels: Vec<ChannelId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckSpec {
    Http(HttpCheck),
    Tcp(TcpCheck),
    Dns(DnsCheck),
    Heartbeat(HeartbeatCheck),
}

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => "http",
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Dns(_) => "dns",
            CheckSpec::Heartbeat(_) => "heartbeat",
        }
    }

    /// Conditions applied when a target lists none.
    pub(crate) fn default_conditions(&self) -> Vec<Condition> {
        let sources: &[&str] = match self {
            CheckSpec::Http(_) => &["[CONNECTED] == true", "[STATUS] < 400"],
            CheckSpec::Tcp(_) => &["[CONNECTED] == true"],
            CheckSpec::Dns(_) => &["[DNS_RCODE] == NOERROR"],
            CheckSpec::Heartbeat(_) => &[],
        };
        sources
            .iter()
            .filter_map(|s| Condition::parse(s).ok())
            .collect()
    }
}

/// One line naming what is checked, for notifications and the CLI. Never includes headers or
/// bodies (they may hold secrets).
impl fmt::Display for CheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckSpec::Http(h) => write!(f, "{} {}", h.method, h.url),
            CheckSpec::Tcp(t) => write!(f, "tcp://{}:{}", t.host, t.port),
            CheckSpec::Dns(d) => write!(f, "dns {} {}", d.record_type, d.name),
            CheckSpec::Heartbeat(h) => {
                write!(f, "heartbeat every {} (grace {})", h.period, h.grace)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    #[serde(deserialize_with = "de_http_url")]
    pub url: Url,
    #[serde(default = "default_method", deserialize_with = "de_method")]
    pub method: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de_headers"
    )]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(
        default = "default_max_redirects",
        deserialize_with = "de_max_redirects"
    )]
    pub max_redirects: u8,
    /// Turning this off still reports certificate expiry; it only stops failing the probe.
    #[serde(default = "yes")]
    pub verify_tls: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    #[serde(deserialize_with = "de_host")]
    pub host: String,
    #[serde(deserialize_with = "de_port")]
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Soa,
    Srv,
    Ptr,
    Caa,
}

impl fmt::Display for DnsRecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Cname => "CNAME",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
            DnsRecordType::Txt => "TXT",
            DnsRecordType::Soa => "SOA",
            DnsRecordType::Srv => "SRV",
            DnsRecordType::Ptr => "PTR",
            DnsRecordType::Caa => "CAA",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    #[serde(deserialize_with = "de_host")]
    pub name: String,
    #[serde(default = "default_record_type")]
    pub record_type: DnsRecordType,
    /// `ip` or `ip:port`; the system resolver when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_resolver"
    )]
    pub resolver: Option<String>,
    /// Every listed answer must be present (for example an IP for A, `10 mx.example.com.` for MX).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatCheck {
    /// How often the job is expected to ping.
    pub period: HumanDuration,
    /// How late a ping may be before the target is down.
    #[serde(default = "default_grace")]
    pub grace: HumanDuration,
    /// Secret path segment of `/ping/{token}`; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A stored target: the author's spec plus ownership and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub tenant: TenantId,
    pub spec: TargetSpec,
    /// Bumped on every write; used for optimistic concurrency.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TargetSpec {
    /// A heartbeat without a token keeps `previous`'s, or gets a random one: it is the secret in
    /// `/ping/{token}`, so a config or API edit that omits it must not change it.
    pub fn ensure_heartbeat_token(&mut self, previous: Option<&TargetSpec>) {
        if let CheckSpec::Heartbeat(hb) = &mut self.check
            && hb.token.is_none()
        {
            let kept = previous.and_then(|p| match &p.check {
                CheckSpec::Heartbeat(old) => old.token.clone(),
                _ => None,
            });
            hb.token = Some(kept.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()));
        }
    }
}

impl Target {
    pub fn id(&self) -> &TargetId {
        &self.spec.id
    }

    /// A copy safe to publish: header values, request bodies and heartbeat tokens replaced.
    pub fn redacted(&self) -> Target {
        let mut t = self.clone();
        match &mut t.spec.check {
            CheckSpec::Http(h) => {
                for v in h.headers.values_mut() {
                    *v = REDACTED.to_owned();
                }
                if h.body.is_some() {
                    h.body = Some(REDACTED.to_owned());
                }
            }
            CheckSpec::Heartbeat(hb) => hb.token = None,
            CheckSpec::Tcp(_) | CheckSpec::Dns(_) => {}
        }
        t
    }
}

pub const REDACTED: &str = "<redacted>";

/// Shortest heartbeat token a user may choose: the token is the only secret of `/ping/{token}`.
pub const MIN_TOKEN_CHARS: usize = 16;
pub const MAX_TOKEN_CHARS: usize = 128;

/// A heartbeat token a user chose: 16 to 128 URL-safe characters (`A-Z a-z 0-9 - _`), so it is
/// hard to guess and stays one path segment. Generated tokens (32 hex digits) pass.
pub fn check_heartbeat_token(token: &str) -> Result<(), String> {
    let n = token.chars().count();
    let url_safe = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&n) || !url_safe {
        return Err(format!(
            "must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters of letters, digits, - and _ \
             (or leave it out to have one generated)"
        ));
    }
    Ok(())
}

// ---- wire form and validation ----

/// The serialized shape of a [`TargetSpec`]: exactly one of `http`, `tcp`, `dns`, `heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetSpecWire {
    pub id: TargetId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatCheck>,
    #[serde(default = "default_interval", deserialize_with = "de_interval")]
    pub interval: HumanDuration,
    #[serde(default = "default_timeout", deserialize_with = "de_timeout")]
    pub timeout: HumanDuration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_tags"
    )]
    pub tags: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(
        default = "default_failure_threshold",
        deserialize_with = "de_threshold"
    )]
    pub failure_threshold: u32,
    #[serde(
        default = "default_success_threshold",
        deserialize_with = "de_threshold"
    )]
    pub success_threshold: u32,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_reminder"
    )]
    pub reminder_interval: Option<HumanDuration>,
    #[serde(default)]
    pub public: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SpecError {
    #[error("target {0:?}: give exactly one of `http`, `tcp`, `dns` or `heartbeat` (found {1})")]
    CheckKind(String, String),
    #[error("target {id:?}: timeout {timeout} must be shorter than interval {interval}")]
    TimeoutNotBelowInterval {
        id: String,
        timeout: HumanDuration,
        interval: HumanDuration,
    },
    #[error("target {0:?}: name must be 1 to 200 characters and not blank")]
    BadName(String),
    #[error("target {0:?}: heartbeat period must be between 10s and 30d")]
    HeartbeatPeriod(String),
    #[error("target {0:?}: heartbeat grace must be at most 30d")]
    HeartbeatGrace(String),
    #[error("target {0:?}: at most {MAX_CONDITIONS} conditions")]
    TooManyConditions(String),
}

impl TryFrom<TargetSpecWire> for TargetSpec {
    type Error = SpecError;
    fn try_from(w: TargetSpecWire) -> Result<Self, SpecError> {
        let id = w.id.to_string();
        let mut kinds = Vec::new();
        if let Some(c) = w.http {
            kinds.push(CheckSpec::Http(c));
        }
        if let Some(c) = w.tcp {
            kinds.push(CheckSpec::Tcp(c));
        }
        if let Some(c) = w.dns {
            kinds.push(CheckSpec::Dns(c));
        }
        if let Some(c) = w.heartbeat {
            kinds.push(CheckSpec::Heartbeat(c));
        }
        if kinds.len() != 1 {
            let found = if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds
                    .iter()
                    .map(|k| k.kind())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(SpecError::CheckKind(id, found));
        }
        let check = kinds.remove(0);
        if let CheckSpec::Heartbeat(h) = &check {
            let p = h.period.as_duration();
            if p < MIN_INTERVAL.as_duration() || p > MAX_HEARTBEAT_WAIT.as_duration() {
                return Err(SpecError::HeartbeatPeriod(id));
            }
            // Unbounded, a deadline (last ping + period + grace) could pass the calendar's end.
            if h.grace > MAX_HEARTBEAT_WAIT {
                return Err(SpecError::HeartbeatGrace(id));
            }
        } else if w.timeout >= w.interval {
            return Err(SpecError::TimeoutNotBelowInterval {
                id,
                timeout: w.timeout,
                interval: w.interval,
            });
        }
        if w.conditions.len() > MAX_CONDITIONS {
            return Err(SpecError::TooManyConditions(id));
        }
        let name = w.name.unwrap_or_else(|| id.clone());
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(SpecError::BadName(id));
        }
        Ok(TargetSpec {
            id: w.id,
            name,
            check,
            interval: w.interval,
            timeout: w.timeout,
            conditions: w.conditions,
            tags: w.tags,
            enabled: w.enabled,
            failure_threshold: w.failure_threshold,
            success_threshold: w.success_threshold,
            reminder_interval: w.reminder_interval,
            public: w.public,
            channels: w.channels,
        })
    }
}

impl From<TargetSpec> for TargetSpecWire {
    fn from(s: TargetSpec) -> Self {
        let (mut http, mut tcp, mut dns, mut heartbeat) = (None, None, None, None);
        match s.check {
            CheckSpec::Http(c) => http = Some(c),
            CheckSpec::Tcp(c) => tcp = Some(c),
            CheckSpec::Dns(c) => dns = Some(c),
            CheckSpec::Heartbeat(c) => heartbeat = Some(c),
        }
        TargetSpecWire {
            id: s.id,
            name: Some(s.name),
            http,
            tcp,
            dns,
            heartbeat,
            interval: s.interval,
            timeout: s.timeout,
            conditions: s.conditions,
            tags: s.tags,
            enabled: s.enabled,
            failure_threshold: s.failure_threshold,
            success_threshold: s.success_threshold,
            reminder_interval: s.reminder_interval,
            public: s.public,
            channels: s.channels,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_method() -> String {
    "GET".to_owned()
}
fn default_max_redirects() -> u8 {
    5
}
fn default_record_type() -> DnsRecordType {
    DnsRecordType::A
}
fn default_grace() -> HumanDuration {
    HumanDuration::from_secs(60)
}
pub(crate) fn default_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}
pub fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
pub fn default_failure_threshold() -> u32 {
    3
}
pub fn default_success_threshold() -> u32 {
    2
}

fn de_interval<'de, D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
    let v = HumanDuration::deserialize(d)?;
    if v < MIN_INTERVAL || v > MAX_INTERVAL {
        return Err(serde::de::Error::custom(format!(
            "interval {v} is out of range: use 10s to 24h"
        )));
    }
    Ok(v)
}

fn de_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
    let v = HumanDuration::deserialize(d)?;
    if v < MIN_TIMEOUT || v > MAX_TIMEOUT {
        return Err(serde::de::Error::custom(format!(
            "timeout {v} is out of range: use 100ms to 60s"
        )));
    }
    Ok(v)
}

fn de_reminder<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HumanDuration>, D::Error> {
    let v = Option::<HumanDuration>::deserialize(d)?;
    if let Some(v) = v
        && v < HumanDuration::from_secs(60)
    {
        return Err(serde::de::Error::custom(format!(
            "reminder_interval {v} is too short: use at least 1m"
        )));
    }
    if let Some(v) = v
        && v > MAX_HEARTBEAT_WAIT
    {
        return Err(serde::de::Error::custom(format!(
            "reminder_interval {v} is too long: use at most 30d"
        )));
    }
    Ok(v)
}

fn de_threshold<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 || v > MAX_THRESHOLD {
        return Err(serde::de::Error::custom(format!(
            "threshold {v} is out of range: use 1 to {MAX_THRESHOLD}"
        )));
    }
    Ok(v)
}

fn de_max_redirects<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if v > MAX_REDIRECTS {
        return Err(serde::de::Error::custom(format!(
            "max_redirects {v} is out of range: use 0 to {MAX_REDIRECTS}"
        )));
    }
    Ok(v)
}

fn de_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let s = String::deserialize(d)?;
    let url = Url::parse(&s).map_err(|e| serde::de::Error::custom(format!("url {s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(serde::de::Error::custom(format!(
            "url {s:?}: scheme must be http or https"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(serde::de::Error::custom(format!("url {s:?}: has no host")));
    }
    Ok(url)
}

fn de_method<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?.to_ascii_uppercase();
    match s.as_str() {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "method {s:?} is not supported: use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"
        ))),
    }
}

fn de_host<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'));
    if !ok {
        return Err(serde::de::Error::custom(format!(
            "host {s:?} is not a hostname or IP address"
        )));
    }
    Ok(s)
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = u16::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("port must be 1 to 65535"));
    }
    Ok(v)
}

/// RFC 9110 token for names; values must not smuggle a line break into the request.
fn de_headers<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let headers = BTreeMap::<String, String>::deserialize(d)?;
    for (name, value) in &headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(serde::de::Error::custom(format!(
                "header name {name:?} is not a valid HTTP header name"
            )));
        }
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(serde::de::Error::custom(format!(
                "header {name:?} has a line break or NUL in its value"
            )));
        }
    }
    Ok(headers)
}

fn de_resolver<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let ok = s.parse::<std::net::IpAddr>().is_ok() || s.parse::<std::net::SocketAddr>().is_ok();
    if !ok {
        return Err(serde::de::Error::custom(format!(
            "resolver {s:?} must be an IP address or ip:port"
        )));
    }
    Ok(Some(s))
}

pub(crate) fn de_tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let tags = Vec::<String>::deserialize(d)?;
    for t in &tags {
        if !is_valid_tag(t) {
            return Err(serde::de::Error::custom(format!(
                "tag {t:?} must be 1-64 characters of letters, digits and - _ . : /"
            )));
        }
    }
    Ok(tags)
}

/// Tags are 1-64 characters of letters, digits and `- _ . : /`.
pub fn is_valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_conditions_parse() {
        let tcp = CheckSpec::Tcp(TcpCheck {
            host: "example.com".into(),
            port: 443,
        });
        assert_eq!(tcp.default_conditions().len(), 1);
        let http = CheckSpec::Http(HttpCheck {
            url: url::Url::parse("https://example.com/").unwrap(),
            method: "GET".into(),
            headers: Default::default(),
            body: None,
            follow_redirects: true,
            max_redirects: 5,
            verify_tls: true,
        });
        assert_eq!(http.default_conditions().len(), 2);
    }

    fn parse(json: &str) -> Result<TargetSpec, String> {
        serde_json::from_str::<TargetSpec>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_roundtrip() {
        let t = parse(r#"{"id":"web","http":{"url":"https://example.com/health"}}"#).unwrap();
        assert_eq!(t.name, "web");
        assert_eq!(t.interval, HumanDuration::from_secs(60));
        assert_eq!(t.timeout, HumanDuration::from_secs(10));
        assert_eq!((t.failure_threshold, t.success_threshold), (3, 2));
        assert!(t.enabled && !t.public);
        let CheckSpec::Http(h) = &t.check else {
            panic!("not http")
        };
        assert_eq!(h.method, "GET");
        assert!(h.follow_redirects && h.verify_tls);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(parse(&json).unwrap(), t);
    }

    #[test]
    fn redaction_removes_credentials() {
        let spec = parse(r#"{"id":"a","http":{"url":"https://x","headers":{"Authorization":"Bearer s3"},"body":"pw=1"}}"#).unwrap();
        let t = Target {
            tenant: TenantId::default_tenant(),
            spec,
            version: 1,
            created_at: DateTime::default(),
            updated_at: DateTime::default(),
        };
        let shown = serde_json::to_string(&t.redacted()).unwrap();
        assert!(!shown.contains("s3") && !shown.contains("pw=1"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
    }

    #[test]
    fn heartbeat_tokens() {
        for ok in [
            "0123456789abcdef",
            "tok-0123456789_ABCDEF",
            &uuid::Uuid::new_v4().simple().to_string(),
        ] {
            assert_eq!(check_heartbeat_token(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "0123456789abcde",
            "../../v1/targets",
            "0123456789abcdef/x",
            "0123456789abcdef ",
            "0123456789abcdefé",
            &"a".repeat(129),
        ] {
            assert!(check_heartbeat_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_bad_specs() {
        let cases = [
            (
                r#"{"id":"a","http":{"url":"https://x"},"interval":"5s"}"#,
                "out of range",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"interval":"25h"}"#,
                "out of range",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"interval":"10s","timeout":"10s"}"#,
                "shorter than interval",
            ),
            (r#"{"id":"a","http":{"url":"ftp://x"}}"#, "scheme"),
            (
                r#"{"id":"a","http":{"url":"https://x","method":"BREW"}}"#,
                "not supported",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"tcp":{"host":"x","port":1}}"#,
                "exactly one",
            ),
            (r#"{"id":"a"}"#, "exactly one"),
            (
                r#"{"id":"a","http":{"url":"https://x"},"bogus":1}"#,
                "unknown field",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x","bogus":1}}"#,
                "unknown field",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"failure_threshold":0}"#,
                "out of range",
            ),
            (
                r#"{"id":"a b","http":{"url":"https://x"}}"#,
                "may contain only",
            ),
            (
                r#"{"id":"a","tcp":{"host":"bad host","port":1}}"#,
                "not a hostname",
            ),
            (
                r#"{"id":"a","dns":{"name":"x.com","resolver":"nope"}}"#,
                "resolver",
            ),
            (
                r#"{"id":"a","heartbeat":{"period":"1s"}}"#,
                "heartbeat period",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"reminder_interval":"31d"}"#,
                "too long",
            ),
            (
                r#"{"id":"a","heartbeat":{"period":"1h","grace":"31d"}}"#,
                "heartbeat grace",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"reminder_interval":"5s"}"#,
                "too short",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x"},"tags":["has space"]}"#,
                "tag",
            ),
            (r#"{"id":"a","tcp":{"host":"x","port":0}}"#, "port must be"),
            (
                r#"{"id":"a","name":" ","http":{"url":"https://x"}}"#,
                "not blank",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x","headers":{"Bad Name":"v"}}}"#,
                "header name",
            ),
            (
                r#"{"id":"a","http":{"url":"https://x","headers":{"X":"a\r\nInjected: 1"}}}"#,
                "line break",
            ),
        ];
        for (json, want) in cases {
            let err = parse(json).expect_err(json);
            assert!(err.contains(want), "{json}: {err}");
        }
        let many = |n| {
            format!(
                r#"{{"id":"a","tcp":{{"host":"x","port":1}},"conditions":[{}]}}"#,
                vec![r#""[CONNECTED] == true""#; n].join(",")
            )
        };
        assert!(parse(&many(MAX_CONDITIONS)).is_ok());
        let err = parse(&many(MAX_CONDITIONS + 1)).expect_err("too many");
        assert!(err.contains("at most 50 conditions"), "{err}");
    }
}
