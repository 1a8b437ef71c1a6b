//! Slack incoming webhooks: Block Kit blocks inside a colour-bar attachment, with a plain `text`
//! fallback for notifications and clients without blocks.

use netmon_core::channel::SlackChannel;
use serde_json::{Value, json};

use super::{Notice, Phase, Provider, RenderError, Request, clip, escape_html};

/// Slack's limits: header text 150, section text 3000, field text 2000, 10 fields a section.
pub(super) const HEADER_MAX: usize = 150;
pub(super) const TEXT_MAX: usize = 3000;
pub(super) const FIELD_MAX: usize = 2000;
pub(super) const FIELDS_MAX: usize = 10;

pub(super) fn colour(n: &Notice) -> &'static str {
    match n.phase {
        Phase::Opened => "#d9534f",
        Phase::Reminder(_) => "#e8912d",
        Phase::Resolved => "#2eb67d",
    }
}

/// Block Kit for the notice: what Slack shows, and what Mattermost ignores.
fn blocks(n: &Notice) -> Vec<Value> {
    let fields: Vec<Value> = n
        .facts()
        .into_iter()
        .take(FIELDS_MAX)
        .map(|(k, v)| {
            json!({"type": "mrkdwn", "text": clip(&format!("*{k}*\n{}", escape_html(&v)), FIELD_MAX)})
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&n.title(), HEADER_MAX), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&escape_html(&n.headline()), TEXT_MAX)}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(link) = &n.link {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": clip(&format!("<{link}|Open in netmon>"), TEXT_MAX)}
        ]}));
    }
    blocks
}

impl Provider for SlackChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let body = json!({
            "text": clip(&escape_html(&format!("{} — {}", n.title(), n.headline())), TEXT_MAX),
            "attachments": [{"color": colour(n), "blocks": blocks(n)}],
        });
        Ok(Request::json(self.url.expose().clone(), &body))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::{chars, str_at};
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert!(!str_at(&v, "/text").is_empty() && chars(&v["text"]) <= TEXT_MAX);
    let att = &v["attachments"][0];
    let colour = str_at(att, "/color");
    assert!(colour.len() == 7 && colour.starts_with('#'), "{colour}");
    let blocks = att["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(chars(&blocks[0]["text"]["text"]) <= HEADER_MAX);
    for b in blocks {
        assert!(["header", "section", "context"].contains(&str_at(b, "/type")));
        if let Some(t) = b.pointer("/text/text") {
            assert!(chars(t) <= TEXT_MAX);
        }
        if let Some(fields) = b["fields"].as_array() {
            assert!(fields.len() <= FIELDS_MAX);
            for f in fields {
                assert_eq!(f["type"], "mrkdwn");
                assert!(chars(&f["text"]) <= FIELD_MAX);
            }
        }
    }
}
