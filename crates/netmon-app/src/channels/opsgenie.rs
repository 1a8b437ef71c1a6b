//! Opsgenie Alert API v2: create with an `alias` derived from the incident id (reminders are
//! deduplicated into the open alert by the same alias), close by alias.

use netmon_core::channel::OpsgenieChannel;
use serde_json::json;

use super::{Notice, Phase, Provider, RenderError, Request, clip, on_host};

pub(super) const MESSAGE_MAX: usize = 130;
pub(super) const ALIAS_MAX: usize = 512;
pub(super) const DESCRIPTION_MAX: usize = 15_000;
pub(super) const NOTE_MAX: usize = 25_000;

impl Provider for OpsgenieChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let alias = clip(&n.dedup_key(), ALIAS_MAX);
        let base = self.base();
        let req = match n.phase {
            Phase::Resolved => {
                let mut url = on_host(&base, &["v2", "alerts", &alias, "close"])?;
                url.query_pairs_mut().append_pair("identifierType", "alias");
                Request::json(
                    url,
                    &json!({"source": "netmon", "note": clip(&format!("{} — {}", n.title(), n.headline()), NOTE_MAX)}),
                )
            }
            Phase::Opened | Phase::Reminder(_) => {
                let mut details = serde_json::Map::new();
                for (k, v) in n.facts() {
                    details.insert(k.to_owned(), json!(clip(&v, 8_000)));
                }
                Request::json(
                    on_host(&base, &["v2", "alerts"])?,
                    &json!({
                        "message": clip(&n.title(), MESSAGE_MAX),
                        "alias": alias,
                        "description": clip(&n.plain(), DESCRIPTION_MAX),
                        "priority": self.priority.as_str(),
                        "source": "netmon",
                        "entity": clip(&n.target_name, 512),
                        "tags": ["netmon"],
                        "details": details,
                    }),
                )
            }
        };
        Ok(req.header(
            "Authorization",
            format!("GenieKey {}", self.api_key.expose()),
        ))
    }

    fn keeps_alerts_open(&self) -> bool {
        true
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::{chars, str_at};
    assert!(r.headers["Authorization"].starts_with("GenieKey "));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    if r.url.path().ends_with("/close") {
        assert_eq!(r.url.query(), Some("identifierType=alias"));
        assert!(r.url.path().starts_with("/v2/alerts/netmon-"));
        assert!(chars(&v["note"]) <= NOTE_MAX);
    } else {
        assert_eq!(r.url.path(), "/v2/alerts");
        let m = chars(&v["message"]);
        assert!((1..=MESSAGE_MAX).contains(&m));
        assert!(chars(&v["alias"]) <= ALIAS_MAX && chars(&v["description"]) <= DESCRIPTION_MAX);
        assert!(["P1", "P2", "P3", "P4", "P5"].contains(&str_at(&v, "/priority")));
        for t in v["tags"].as_array().unwrap() {
            assert!(chars(t) <= 50);
        }
        for (k, d) in v["details"].as_object().unwrap() {
            assert!(k.len() <= 8_000 && chars(d) <= 8_000);
        }
    }
}
