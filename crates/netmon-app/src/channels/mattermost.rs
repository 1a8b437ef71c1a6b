//! Mattermost incoming webhooks: the Slack-compatible attachment shape (Mattermost does not
//! render Block Kit), with `fields`, a colour bar and a fallback.

use netmon_core::channel::MattermostChannel;
use serde_json::{Value, json};

use super::{Notice, Provider, RenderError, Request, clip};

/// Mattermost's default maximum post size, in characters.
#[cfg(test)]
pub(super) const POST_MAX: usize = 16_383;
const FIELD_MAX: usize = 2_000;

impl Provider for MattermostChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let fields: Vec<Value> = n
            .facts()
            .into_iter()
            .map(|(k, v)| json!({"title": k, "value": clip(&v, FIELD_MAX), "short": k != "Cause" && k != "Check"}))
            .collect();
        let mut attachment = json!({
            "fallback": clip(&format!("{} — {}", n.title(), n.headline()), 1_000),
            "color": super::slack::colour(n),
            "title": clip(&n.title(), 1_000),
            "text": clip(&n.headline(), 4_000),
            "fields": fields,
        });
        if let Some(link) = &n.link {
            attachment["title_link"] = json!(link.as_str());
        }
        let mut body = json!({ "attachments": [attachment] });
        if let Some(channel) = &self.channel {
            body["channel"] = json!(channel);
        }
        if let Some(username) = &self.username {
            body["username"] = json!(username);
        }
        Ok(Request::json(self.url.expose().clone(), &body))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::{chars, str_at};
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let a = &v["attachments"][0];
    assert!(!str_at(a, "/fallback").is_empty() && !str_at(a, "/title").is_empty());
    assert!(str_at(a, "/color").starts_with('#'));
    let total: usize = a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!str_at(f, "/title").is_empty() && f["short"].is_boolean());
            chars(&f["value"])
        })
        .sum::<usize>()
        + chars(&a["text"])
        + chars(&a["title"]);
    assert!(total <= POST_MAX, "{total}");
}
