//! Provider channels (Slack, Discord, Teams, PagerDuty, Opsgenie, Telegram, ntfy, Pushover,
//! Google Chat, Mattermost, email): one file per provider behind [`Provider`]. Rendering is a pure
//! function from a [`Notice`] to a [`Request`]; [`send`] puts the request through the probe
//! engine (so the SSRF guard applies to every provider URL) and classifies the answer.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_core::channel::ChannelKind;
use netmon_core::events::{Envelope, Event, IncidentCause, Subject};
use netmon_core::observation::Observation;
use netmon_core::ports::{DeliveryError, ProbeEngine};
use netmon_core::target::{CheckSpec, HttpCheck};
use url::Url;

mod discord;
pub(crate) mod email;
mod google_chat;
mod mattermost;
mod ntfy;
mod opsgenie;
mod pagerduty;
mod pushover;
mod slack;
mod teams;
mod telegram;
mod view;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod json_checks;

pub use view::{channel_view, is_secret_path, redact_wire, redacted_spec, secret_fingerprint};

/// Which incident transition a notice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Opened,
    Resolved,
    /// The n-th reminder (1 for the first).
    Reminder(u32),
}

/// What every provider message says, read once from the event: the target, the transition,
/// since when and for how long, the cause in words, the location and a link.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notice {
    pub phase: Phase,
    /// A test send from the API: a sample incident, marked as a test everywhere it shows.
    pub test: bool,
    pub incident_id: String,
    pub target_name: String,
    /// One line naming what is checked (`GET https://…`).
    pub check: String,
    pub opened_at: DateTime<Utc>,
    /// When the failures began (opened, reminder) or when the incident resolved.
    pub at: DateTime<Utc>,
    /// How long it was (resolved) or has been (reminder) down.
    pub duration: Option<String>,
    pub cause: Option<String>,
    pub location: Option<String>,
    pub link: Option<Url>,
}

pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn human_secs(s: i64) -> String {
    netmon_core::duration::format_duration(Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

fn cause_text(cause: &IncidentCause) -> String {
    let words = crate::render::describe_cause(cause);
    match cause.status_code {
        Some(code) if !words.contains(&code.to_string()) => format!("HTTP {code}; {words}"),
        _ => words,
    }
}

/// The tenant's status page under the public base URL, when one is configured.
fn status_link(base: Option<&Url>, tenant: &netmon_core::TenantId) -> Option<Url> {
    base.and_then(|l| l.join(&format!("status/{tenant}")).ok())
}

impl Notice {
    /// The notice of an incident event, or a sample incident for a test send; `None` for
    /// events that are not notifications. `base` is the public base URL (messages link to the
    /// tenant's status page under it).
    pub fn of(env: &Envelope, base: Option<&Url>) -> Option<Notice> {
        let link = status_link(base, &env.tenant);
        Some(match &env.event {
            Event::IncidentOpened(e) => Notice {
                phase: Phase::Opened,
                duration: None,
                ..Notice::down(&e.incident_id, &e.subject, e.opened_at, &e.cause, link)
            },
            Event::IncidentReminder(e) => Notice {
                phase: Phase::Reminder(e.reminder),
                duration: Some(human_secs(e.ongoing_s)),
                ..Notice::down(&e.incident_id, &e.subject, e.opened_at, &e.cause, link)
            },
            Event::IncidentResolved(e) => Notice {
                phase: Phase::Resolved,
                test: false,
                incident_id: e.incident_id.clone(),
                target_name: e.subject.target_name.clone(),
                check: e.subject.check.clone(),
                opened_at: e.opened_at,
                at: e.resolved_at,
                duration: Some(human_secs(e.duration_s)),
                cause: None,
                location: None,
                link,
            },
            Event::ChannelTest(t) => Notice {
                phase: Phase::Opened,
                test: true,
                // Per channel and event, so a test never dedupes into (or resolves) a real alert.
                incident_id: format!("test-{}-{}", t.channel_id, env.id),
                target_name: "netmon test target".to_owned(),
                check: "GET https://example.com/health".to_owned(),
                opened_at: env.time,
                at: env.time,
                duration: None,
                cause: Some(t.message.clone()),
                location: Some("netmon test".to_owned()),
                link,
            },
            _ => return None,
        })
    }

    /// An incident that is (still) down; the caller sets phase and duration.
    fn down(
        incident_id: &str,
        subject: &Subject,
        opened_at: DateTime<Utc>,
        cause: &IncidentCause,
        link: Option<Url>,
    ) -> Notice {
        Notice {
            phase: Phase::Opened,
            test: false,
            incident_id: incident_id.to_owned(),
            target_name: subject.target_name.clone(),
            check: subject.check.clone(),
            opened_at,
            at: cause.failing_since,
            duration: None,
            cause: Some(cause_text(cause)),
            location: Some(cause.location.clone()),
            link,
        }
    }

    /// The resolution of this (test) notice's incident.
    pub fn resolved(&self) -> Notice {
        Notice {
            phase: Phase::Resolved,
            duration: Some(human_secs(0)),
            cause: None,
            location: None,
            ..self.clone()
        }
    }

    /// `DOWN`, `RESOLVED`, `STILL DOWN`.
    pub fn state(&self) -> &'static str {
        match self.phase {
            Phase::Opened => "DOWN",
            Phase::Resolved => "RESOLVED",
            Phase::Reminder(_) => "STILL DOWN",
        }
    }

    /// `DOWN: Shop API`, with a `TEST` prefix on test sends.
    pub fn title(&self) -> String {
        let test = if self.test { "TEST " } else { "" };
        format!("{test}{}: {}", self.state(), self.target_name)
    }

    /// One sentence saying what happened and when.
    pub fn headline(&self) -> String {
        match self.phase {
            Phase::Opened => format!(
                "{} is down since {} (opened {}).",
                self.target_name,
                when(self.at),
                when(self.opened_at)
            ),
            Phase::Resolved => format!(
                "{} recovered at {} after {}.",
                self.target_name,
                when(self.at),
                self.duration.as_deref().unwrap_or("?")
            ),
            Phase::Reminder(n) => format!(
                "{} has been down for {} (since {}); reminder {n}.",
                self.target_name,
                self.duration.as_deref().unwrap_or("?"),
                when(self.at)
            ),
        }
    }

    /// Label/value pairs for providers with fields: check, since, duration, cause, location.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("Check", self.check.clone())];
        match self.phase {
            Phase::Resolved => {
                f.push(("Down since", when(self.opened_at)));
                f.push(("Resolved", when(self.at)));
            }
            _ => f.push(("Failing since", when(self.at))),
        }
        if let Some(d) = &self.duration {
            f.push(("Duration", d.clone()));
        }
        if let Some(c) = &self.cause {
            f.push(("Cause", c.clone()));
        }
        if let Some(l) = &self.location {
            f.push(("Location", l.clone()));
        }
        f.push(("Incident", self.incident_id.clone()));
        f
    }

    /// The whole message as plain text lines (headline, then `Label: value`).
    pub fn plain(&self) -> String {
        let mut out = self.headline();
        for (k, v) in self.facts() {
            out.push_str(&format!("\n{k}: {v}"));
        }
        if let Some(l) = &self.link {
            out.push_str(&format!("\n{l}"));
        }
        out
    }

    /// The provider-side key of the incident (PagerDuty `dedup_key`, Opsgenie `alias`): derived
    /// from the incident id alone, so a stateless sender can resolve what another one opened.
    pub fn dedup_key(&self) -> String {
        format!("netmon-{}", self.incident_id)
    }
}

/// One HTTP request to a provider.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub method: &'static str,
    pub url: Url,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Request {
    pub fn json(url: Url, body: &serde_json::Value) -> Request {
        Request {
            method: "POST",
            url,
            headers: BTreeMap::from([("Content-Type".to_owned(), "application/json".to_owned())]),
            body: body.to_string(),
        }
    }

    pub fn header(mut self, name: &str, value: String) -> Request {
        self.headers.insert(name.to_owned(), value);
        self
    }
}

/// Why a message could not be rendered: the channel's settings cannot work (final).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RenderError(pub String);

/// One provider: how a notice becomes its request.
pub(crate) trait Provider: Sync {
    fn render(&self, notice: &Notice) -> Result<Request, RenderError>;

    /// Providers that keep an alert open until told otherwise (PagerDuty, Opsgenie): a test
    /// send resolves its sample incident right after opening it, so no test alert stays open.
    fn keeps_alerts_open(&self) -> bool {
        false
    }
}

/// The provider of a kind; `None` for the kinds `delivery` handles itself (webhook, log, email).
pub(crate) fn provider(kind: &ChannelKind) -> Option<&dyn Provider> {
    Some(match kind {
        ChannelKind::Webhook(_) | ChannelKind::Log(_) | ChannelKind::Email(_) => return None,
        ChannelKind::Slack(c) => c,
        ChannelKind::Discord(c) => c,
        ChannelKind::Teams(c) => c,
        ChannelKind::PagerDuty(c) => c,
        ChannelKind::Opsgenie(c) => c,
        ChannelKind::Telegram(c) => c,
        ChannelKind::Ntfy(c) => c,
        ChannelKind::Pushover(c) => c,
        ChannelKind::GoogleChat(c) => c,
        ChannelKind::Mattermost(c) => c,
    })
}

/// `base` joined with `path`, refused unless it stays on `base`'s scheme, host and port: the
/// check fixed-host providers (PagerDuty, Opsgenie, Telegram, Pushover) make so no setting can
/// steer a credential-bearing request elsewhere.
pub(crate) fn on_host(base: &Url, segments: &[&str]) -> Result<Url, RenderError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| RenderError(format!("{} cannot take a path", base.scheme())))?
        .pop_if_empty()
        .extend(segments);
    if (url.scheme(), url.host_str(), url.port_or_known_default())
        != (base.scheme(), base.host_str(), base.port_or_known_default())
    {
        return Err(RenderError(
            "the request would leave the provider's host".into(),
        ));
    }
    Ok(url)
}

/// At most `max` characters, ending in `…` when cut (providers refuse or cut longer values).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes `&`, `<` and `>` (HTML, Slack mrkdwn and Telegram HTML all need these three).
pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Sends `req` through the probe engine and classifies the answer. `what` names the channel
/// without secrets.
pub(crate) async fn send(
    prober: &dyn ProbeEngine,
    timeout: Duration,
    what: &str,
    req: Request,
) -> Result<(), DeliveryError> {
    let check = CheckSpec::Http(HttpCheck {
        url: req.url,
        method: req.method.to_owned(),
        headers: req.headers,
        body: Some(req.body),
        follow_redirects: false,
        max_redirects: 0,
        verify_tls: true,
    });
    let obs = prober.observe(&check, timeout).await;
    answer(what, &obs)
}

/// [`crate::answer::outcome`] plus what providers say in their bodies: the wait of a 429 when
/// only the body has it (Telegram's `parameters.retry_after`, Discord's `retry_after`), and the
/// provider's reason on a final refusal.
pub(crate) fn answer(what: &str, obs: &Observation) -> Result<(), DeliveryError> {
    let body: Option<serde_json::Value> = obs
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    match crate::answer::outcome(what, obs) {
        Err(DeliveryError::Retryable {
            reason,
            retry_after: None,
        }) if obs.status == Some(429) => {
            let wait = body.as_ref().and_then(|b| {
                b.pointer("/parameters/retry_after")
                    .or_else(|| b.get("retry_after"))
                    .and_then(serde_json::Value::as_f64)
            });
            Err(DeliveryError::Retryable {
                reason,
                retry_after: wait
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .map(|w| Duration::from_secs_f64(w.min(86_400.0))),
            })
        }
        Err(DeliveryError::Final { reason }) if obs.status.is_some() => {
            let said = obs.body.as_deref().map(str::trim).unwrap_or_default();
            if said.is_empty() {
                Err(DeliveryError::Final { reason })
            } else {
                let said: String = said.chars().filter(|c| !c.is_control()).collect();
                Err(DeliveryError::Final {
                    reason: format!("{reason}: {}", clip(&said, 300)),
                })
            }
        }
        other => other,
    }
}

/// An HTTP answer as the probe engine reports it (tests of answer classification).
#[cfg(test)]
pub(crate) fn answered(status: u16, headers: &[(&str, &str)], body: &str) -> Observation {
    Observation {
        connected: true,
        status: Some(status),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: Some(body.to_owned()),
        ..Observation::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_take_the_wait_from_the_header_or_the_body() {
        let wait = |o: &Observation| match answer("x", o) {
            Err(DeliveryError::Retryable { retry_after, .. }) => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            wait(&answered(429, &[("Retry-After", "7")], "{}")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            wait(&answered(
                429,
                &[],
                r#"{"ok":false,"error_code":429,"parameters":{"retry_after":12}}"#
            )),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            wait(&answered(429, &[], r#"{"retry_after":1.5,"global":false}"#)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(wait(&answered(503, &[], "busy")), None);
    }

    #[test]
    fn final_refusals_carry_the_providers_reason() {
        let e = answer("slack", &answered(403, &[], "invalid_token\n")).unwrap_err();
        assert_eq!(e.to_string(), "slack answered HTTP 403: invalid_token");
        assert!(e.is_final());
        assert_eq!(answer("x", &answered(202, &[], "")), Ok(()));
    }

    #[test]
    fn on_host_refuses_to_leave_the_base() {
        let base = Url::parse("https://api.telegram.org/").unwrap();
        let u = on_host(&base, &["bot1:a/../../x?y", "sendMessage"]).unwrap();
        assert_eq!(u.host_str(), Some("api.telegram.org"));
        assert_eq!(u.path(), "/bot1:a%2F..%2F..%2Fx%3Fy/sendMessage");
        let sub = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            on_host(&sub, &["v2", "enqueue"]).unwrap().as_str(),
            "http://127.0.0.1:9/prefix/v2/enqueue"
        );
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("ééééé", 5), "ééééé");
        assert_eq!(clip("éééééé", 5), "éééé…");
    }
}
