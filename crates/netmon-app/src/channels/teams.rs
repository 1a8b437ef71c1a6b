//! Microsoft Teams Workflows (Power Automate) webhooks: an Adaptive Card 1.4 (the version that
//! renders reliably in Teams) in the `message` envelope.

use netmon_core::channel::TeamsChannel;
use serde_json::{Value, json};

use super::{Notice, Phase, Provider, RenderError, Request, clip};

pub(super) const CARD_VERSION: &str = "1.4";
pub(super) const CARD_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// Teams refuses messages above about 28 KB.
#[cfg(test)]
pub(super) const PAYLOAD_MAX: usize = 28_000;

impl Provider for TeamsChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let colour = match n.phase {
            Phase::Opened => "Attention",
            Phase::Reminder(_) => "Warning",
            Phase::Resolved => "Good",
        };
        let facts: Vec<Value> = n
            .facts()
            .into_iter()
            .map(|(k, v)| json!({"title": k, "value": clip(&v, 2_000)}))
            .collect();
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "msteams": {"width": "Full"},
            "body": [
                {"type": "TextBlock", "text": clip(&n.title(), 500), "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true},
                {"type": "TextBlock", "text": clip(&n.headline(), 2_000), "wrap": true},
                {"type": "FactSet", "facts": facts},
            ],
        });
        if let Some(link) = &n.link {
            card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open in netmon", "url": link.as_str()}]);
        }
        let body = json!({
            "type": "message",
            "attachments": [{"contentType": CARD_TYPE, "contentUrl": null, "content": card}],
        });
        Ok(Request::json(self.url.expose().clone(), &body))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::str_at;
    assert!(r.body.len() <= PAYLOAD_MAX);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["type"], "message");
    let a = &v["attachments"][0];
    assert_eq!(a["contentType"], CARD_TYPE);
    let card = &a["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], CARD_VERSION);
    let body = card["body"].as_array().unwrap();
    assert!(!body.is_empty());
    for el in body {
        match str_at(el, "/type") {
            "TextBlock" => {
                assert!(!str_at(el, "/text").is_empty());
                if let Some(c) = el.get("color") {
                    let allowed = [
                        "Default",
                        "Dark",
                        "Light",
                        "Accent",
                        "Good",
                        "Warning",
                        "Attention",
                    ];
                    assert!(allowed.contains(&c.as_str().unwrap()));
                }
            }
            "FactSet" => {
                for f in el["facts"].as_array().unwrap() {
                    assert!(f["title"].is_string() && f["value"].is_string());
                }
            }
            other => panic!("element {other} is not used by netmon's cards"),
        }
    }
    if let Some(actions) = card["actions"].as_array() {
        for a in actions {
            assert_eq!(a["type"], "Action.OpenUrl");
            url::Url::parse(str_at(a, "/url")).unwrap();
        }
    }
}
