//! The settings of each provider channel kind (Slack, Discord, Teams, PagerDuty, Opsgenie,
//! Telegram, ntfy, Pushover, Google Chat, Mattermost, email): parsed strictly at the boundary, with
//! every credential in a [`Secret`] or [`SecretUrl`] so `Debug` never shows it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// What API answers show instead of a secret (see `netmon_app::channels::view`). Refused as a
/// value, so a GET sent back as a PUT cannot overwrite a credential with the marker.
pub const SECRET_MARKER: &str = "<redacted";

/// A credential (token, key, password). Serializes as itself, because stores keep it; API
/// answers replace it; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Secret {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if s.starts_with(SECRET_MARKER) {
            return Err("is the redaction marker, not a secret: give the real value".into());
        }
        Ok(Secret(s))
    }
}

impl From<Secret> for String {
    fn from(s: Secret) -> String {
        s.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A URL whose path and query are the credential (Slack, Discord, Teams, Google Chat and
/// Mattermost webhooks). http or https only; `Debug` shows scheme and host.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl TryFrom<String> for SecretUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.starts_with(SECRET_MARKER) {
            return Err("is the redaction marker, not a URL: give the real webhook URL".into());
        }
        http_url(&s).map(SecretUrl)
    }
}

impl From<SecretUrl> for String {
    fn from(s: SecretUrl) -> String {
        s.0.into()
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/<redacted>",
            self.0.scheme(),
            self.0.host_str().unwrap_or_default()
        )
    }
}

fn http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL with a host".into());
    }
    Ok(url)
}

/// Replaces a provider's API base URL (a regional proxy, a self-hosted server, a test fake).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint(Url);

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        http_url(&s).map(Endpoint)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.0.into()
    }
}

/// The endpoint override, else the provider's own base URL.
fn base_or(endpoint: &Option<Endpoint>, fixed_base: &str) -> Url {
    endpoint
        .as_ref()
        .map_or_else(|| fixed(fixed_base), |e| e.0.clone())
}

/// US or EU, for providers that run separate regional APIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Us,
    Eu,
}

impl Region {
    fn is_us(&self) -> bool {
        *self == Region::Us
    }
}

/// A Slack incoming webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannel {
    pub url: SecretUrl,
}

/// A Discord channel webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordChannel {
    pub url: SecretUrl,
}

/// A Microsoft Teams Workflows (Power Automate) webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsChannel {
    pub url: SecretUrl,
}

/// A Google Chat space webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleChatChannel {
    pub url: SecretUrl,
}

/// A Mattermost incoming webhook (Slack-compatible payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostChannel {
    pub url: SecretUrl,
    /// Overrides the webhook's channel, when the webhook allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PagerDutySeverity {
    #[default]
    Critical,
    Error,
    Warning,
    Info,
}

impl PagerDutySeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// PagerDuty Events API v2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyChannel {
    /// The integration's routing key (a secret).
    pub routing_key: Secret,
    #[serde(default)]
    pub severity: PagerDutySeverity,
    #[serde(default, skip_serializing_if = "Region::is_us")]
    pub region: Region,
    /// Replaces the regional API base URL (a proxy, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

impl PagerDutyChannel {
    pub fn base(&self) -> Url {
        base_or(
            &self.endpoint,
            match self.region {
                Region::Us => "https://events.pagerduty.com/",
                Region::Eu => "https://events.eu.pagerduty.com/",
            },
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpsgeniePriority {
    P1,
    P2,
    #[default]
    P3,
    P4,
    P5,
}

impl OpsgeniePriority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
            Self::P4 => "P4",
            Self::P5 => "P5",
        }
    }
}

/// Opsgenie Alert API v2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieChannel {
    /// An API integration key (a secret).
    pub api_key: Secret,
    #[serde(default)]
    pub priority: OpsgeniePriority,
    #[serde(default, skip_serializing_if = "Region::is_us")]
    pub region: Region,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

impl OpsgenieChannel {
    pub fn base(&self) -> Url {
        base_or(
            &self.endpoint,
            match self.region {
                Region::Us => "https://api.opsgenie.com/",
                Region::Eu => "https://api.eu.opsgenie.com/",
            },
        )
    }
}

/// A Telegram bot posting to a chat (optionally one forum topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramChannel {
    pub bot_token: Secret,
    /// A numeric chat id (`-100…` for channels and supergroups) or `@channelusername`.
    #[serde(deserialize_with = "de_chat_id")]
    pub chat_id: String,
    /// A forum topic (`message_thread_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

impl TelegramChannel {
    pub fn base(&self) -> Url {
        base_or(&self.endpoint, "https://api.telegram.org/")
    }
}

/// Accepts `-1001234` as a number or a string, or `@name`; anything else is refused here rather
/// than by Telegram at the first incident.
fn de_chat_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(i64),
        Text(String),
    }
    let s = match Raw::deserialize(d)? {
        Raw::Num(n) => return Ok(n.to_string()),
        Raw::Text(s) => s,
    };
    let numeric = s.parse::<i64>().is_ok();
    let username = s.strip_prefix('@').is_some_and(|u| {
        (5..=32).contains(&u.len()) && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if numeric || username {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(
            "chat_id must be a number (such as -1001234567890) or @channelusername",
        ))
    }
}

/// ntfy: a topic on the public server or a self-hosted one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyChannel {
    #[serde(default = "ntfy_sh", deserialize_with = "de_server")]
    pub server: Url,
    #[serde(deserialize_with = "de_topic")]
    pub topic: String,
    /// An access token (`tk_…`) for protected topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// 1 (min) to 5 (urgent); default 4 for opened and reminders, 3 for resolved.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_ntfy_priority"
    )]
    pub priority: Option<u8>,
    /// Extra tags (emoji short codes show as icons) added to every message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

fn ntfy_sh() -> Url {
    fixed("https://ntfy.sh/")
}

fn de_server<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    http_url(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_topic<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(
            "topic must be 1 to 64 letters, digits, `-` or `_`",
        ))
    }
}

fn de_ntfy_priority<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match Option::<u8>::deserialize(d)? {
        Some(p) if !(1..=5).contains(&p) => Err(serde::de::Error::custom(
            "priority must be 1 (min) to 5 (urgent)",
        )),
        p => Ok(p),
    }
}

/// Pushover: an application token and a user (or group) key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushoverChannel {
    pub token: Secret,
    pub user: Secret,
    /// -2 (silent) to 2 (emergency: repeats every minute for an hour until acknowledged).
    #[serde(default, deserialize_with = "de_pushover_priority")]
    pub priority: i8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

impl PushoverChannel {
    pub fn base(&self) -> Url {
        base_or(&self.endpoint, "https://api.pushover.net/")
    }
}

fn de_pushover_priority<'de, D: Deserializer<'de>>(d: D) -> Result<i8, D::Error> {
    let p = i8::deserialize(d)?;
    if (-2..=2).contains(&p) {
        Ok(p)
    } else {
        Err(serde::de::Error::custom("priority must be -2 to 2"))
    }
}

/// An email address as SMTP and SES take it: `local@domain`, no display name, no whitespace or
/// control characters (a newline in an address would be header injection).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@` (SES identities are addresses or domains).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        if s.len() > 254
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
            || email_address::EmailAddress::parse_with_options(&s, options).is_err()
        {
            return Err(format!(
                "{s:?} is not an email address (local@domain.example)"
            ));
        }
        Ok(EmailAddress(s))
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Email: `netmon up` sends through the channel's `smtp` server; on AWS the notifier sends
/// through Amazon SES from the deployment's sender identity and ignores `smtp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    pub from: EmailAddress,
    /// 1 to 50 recipients.
    #[serde(deserialize_with = "de_recipients")]
    pub to: Vec<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpServer>,
}

/// SES takes at most 50 recipients per message; the same bound for SMTP keeps one shape.
pub const EMAIL_MAX_RECIPIENTS: usize = 50;

fn de_recipients<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EmailAddress>, D::Error> {
    let to = Vec::<EmailAddress>::deserialize(d)?;
    if (1..=EMAIL_MAX_RECIPIENTS).contains(&to.len()) {
        Ok(to)
    } else {
        Err(serde::de::Error::custom(format!(
            "to must list 1 to {EMAIL_MAX_RECIPIENTS} addresses"
        )))
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connect, then `STARTTLS` (required: a server that does not offer it is refused).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for servers on loopback or a private network (a local relay).
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// The SMTP server of an email channel (`netmon up`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpServer {
    #[serde(deserialize_with = "de_smtp_host")]
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Write-only, like every channel credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

impl SmtpServer {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

/// A DNS name or an IP address: what SMTP connects to (and TLS verifies).
fn de_smtp_host<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let ok = s.parse::<std::net::IpAddr>().is_ok()
        || ((1..=253).contains(&s.len())
            && s.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            }));
    if ok {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(
            "host must be a DNS name or an IP address (no scheme or port)",
        ))
    }
}

/// Constant base URLs, written here once and covered by tests.
fn fixed(s: &str) -> Url {
    Url::parse(s).unwrap_or_else(|e| unreachable!("constant URL {s}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_refuse_the_marker_and_hide_in_debug() {
        let k: PagerDutyChannel = serde_json::from_str(r#"{"routing_key":"R0ut1ngK3y"}"#).unwrap();
        assert!(!format!("{k:?}").contains("R0ut1ngK3y"));
        assert_eq!(k.base().as_str(), "https://events.pagerduty.com/");
        let e = serde_json::from_str::<PagerDutyChannel>(r#"{"routing_key":"<redacted>"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("marker"), "{e}");
        let s: SlackChannel =
            serde_json::from_str(r#"{"url":"https://hooks.slack.com/services/T/B/s3cr3t"}"#)
                .unwrap();
        assert_eq!(
            format!("{s:?}"),
            "SlackChannel { url: https://hooks.slack.com/<redacted> }"
        );
        assert!(serde_json::from_str::<SlackChannel>(r#"{"url":"ftp://x/y"}"#).is_err());
    }

    #[test]
    fn values_are_checked() {
        let t: TelegramChannel =
            serde_json::from_str(r#"{"bot_token":"1:a","chat_id":-1001}"#).unwrap();
        assert_eq!(t.chat_id, "-1001");
        assert!(
            serde_json::from_str::<TelegramChannel>(r#"{"bot_token":"1:a","chat_id":"x y"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<NtfyChannel>(r#"{"topic":"a/b"}"#).is_err());
        assert!(serde_json::from_str::<NtfyChannel>(r#"{"topic":"a","priority":6}"#).is_err());
        let n: NtfyChannel = serde_json::from_str(r#"{"topic":"alerts"}"#).unwrap();
        assert_eq!(n.server.as_str(), "https://ntfy.sh/");
        assert!(
            serde_json::from_str::<PushoverChannel>(r#"{"token":"a","user":"b","priority":3}"#)
                .is_err()
        );
        let o: OpsgenieChannel =
            serde_json::from_str(r#"{"api_key":"k","region":"eu","priority":"P1"}"#).unwrap();
        assert_eq!(o.base().as_str(), "https://api.eu.opsgenie.com/");
        assert!(
            serde_json::from_str::<OpsgenieChannel>(r#"{"api_key":"k","priority":"P6"}"#).is_err()
        );
    }

    #[test]
    fn email_settings_are_checked() {
        let e: EmailChannel = serde_json::from_str(
            r#"{"from":"netmon@example.com","to":["ops@example.com"],
                "smtp":{"host":"smtp.example.com","username":"u","password":"pw"}}"#,
        )
        .unwrap();
        let smtp = e.smtp.as_ref().unwrap();
        assert_eq!((smtp.tls, smtp.port()), (SmtpTls::Starttls, 587));
        assert!(!format!("{e:?}").contains("pw"));
        assert_eq!(e.from.domain(), "example.com");
        for bad in [
            r#"{"from":"x","to":["a@b.example"]}"#,
            r#"{"from":"a@b.example","to":[]}"#,
            r#"{"from":"a@b.example","to":["a@b.example\r\nBcc: x@y.example"]}"#,
            r#"{"from":"A <a@b.example>","to":["a@b.example"]}"#,
            r#"{"from":"a@b.example","to":["a@b.example"],"smtp":{"host":"smtp://h"}}"#,
            r#"{"from":"a@b.example","to":["a@b.example"],"smtp":{"host":"h","tls":"ssl"}}"#,
            r#"{"from":"a@b.example","to":["a@b.example"],"cc":[]}"#,
        ] {
            assert!(serde_json::from_str::<EmailChannel>(bad).is_err(), "{bad}");
        }
    }
}
