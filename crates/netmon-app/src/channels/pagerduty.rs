//! PagerDuty Events API v2: `trigger` on opened (and reminders, which PagerDuty folds into the
//! open alert), `resolve` on resolved, both with a `dedup_key` derived from the incident id so
//! a stateless sender can resolve what another one opened.

use netmon_core::channel::PagerDutyChannel;
use serde_json::json;

use super::{Notice, Phase, Provider, RenderError, Request, clip, on_host};

pub(super) const SUMMARY_MAX: usize = 1_024;
pub(super) const DEDUP_KEY_MAX: usize = 255;

impl Provider for PagerDutyChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let url = on_host(&self.base(), &["v2", "enqueue"])?;
        let dedup_key = clip(&n.dedup_key(), DEDUP_KEY_MAX);
        let body = match n.phase {
            Phase::Resolved => json!({
                "routing_key": self.routing_key.expose(),
                "event_action": "resolve",
                "dedup_key": dedup_key,
            }),
            Phase::Opened | Phase::Reminder(_) => {
                let summary = match &n.cause {
                    Some(c) => format!("{} — {c}", n.title()),
                    None => n.title(),
                };
                let mut details = serde_json::Map::new();
                for (k, v) in n.facts() {
                    details.insert(k.to_lowercase().replace(' ', "_"), json!(v));
                }
                let mut body = json!({
                    "routing_key": self.routing_key.expose(),
                    "event_action": "trigger",
                    "dedup_key": dedup_key,
                    "client": "netmon",
                    "payload": {
                        "summary": clip(&summary, SUMMARY_MAX),
                        "source": clip(n.location.as_deref().unwrap_or("netmon"), 255),
                        "severity": self.severity.as_str(),
                        "timestamp": n.at.to_rfc3339(),
                        "component": clip(&n.target_name, 255),
                        "class": "availability",
                        "custom_details": details,
                    },
                });
                if let Some(link) = &n.link {
                    body["client_url"] = json!(link.as_str());
                }
                body
            }
        };
        Ok(Request::json(url, &body))
    }

    fn keeps_alerts_open(&self) -> bool {
        true
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::{chars, str_at};
    assert!(r.url.path().ends_with("/v2/enqueue"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(!str_at(&v, "/routing_key").is_empty());
    let key = str_at(&v, "/dedup_key");
    assert!(!key.is_empty() && key.len() <= DEDUP_KEY_MAX);
    match str_at(&v, "/event_action") {
        "trigger" => {
            let p = &v["payload"];
            assert!(!str_at(p, "/summary").is_empty() && chars(&p["summary"]) <= SUMMARY_MAX);
            assert!(!str_at(p, "/source").is_empty());
            assert!(["critical", "error", "warning", "info"].contains(&str_at(p, "/severity")));
            chrono::DateTime::parse_from_rfc3339(str_at(p, "/timestamp")).unwrap();
        }
        "resolve" => assert!(v.get("payload").is_none()),
        other => panic!("event_action {other}"),
    }
}
