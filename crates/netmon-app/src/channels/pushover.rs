//! Pushover `messages.json`: title, HTML message, priority (emergency priority 2 repeats every
//! minute for an hour until acknowledged) and a supplementary URL.

use netmon_core::channel::PushoverChannel;
use serde_json::json;

use super::{Notice, Provider, RenderError, Request, clip, escape_html, on_host};

pub(super) const TITLE_MAX: usize = 250;
pub(super) const MESSAGE_MAX: usize = 1_024;
pub(super) const URL_MAX: usize = 512;
#[cfg(test)]
pub(super) const URL_TITLE_MAX: usize = 100;

/// Pushover HTML; values clipped before escaping so no entity or tag is cut.
fn html(n: &Notice) -> String {
    let mut out = escape_html(&clip(&n.headline(), 200));
    for (k, v) in n.facts() {
        out.push_str(&format!("\n<b>{k}:</b> {}", escape_html(&clip(&v, 90))));
    }
    out
}

impl Provider for PushoverChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let url = on_host(&self.base(), &["1", "messages.json"])?;
        let message = html(n);
        // Escaping can grow the text past the limit; plain text can always be clipped safely.
        let (message, html) = if message.chars().count() <= MESSAGE_MAX {
            (message, 1)
        } else {
            (clip(&n.plain(), MESSAGE_MAX), 0)
        };
        let mut body = json!({
            "token": self.token.expose(),
            "user": self.user.expose(),
            "title": clip(&n.title(), TITLE_MAX),
            "message": message,
            "html": html,
            "priority": self.priority,
            "timestamp": n.at.timestamp(),
        });
        if self.priority == 2 {
            body["retry"] = json!(60);
            body["expire"] = json!(3600);
        }
        if let Some(link) = n.link.as_ref().filter(|l| l.as_str().len() <= URL_MAX) {
            body["url"] = json!(link.as_str());
            body["url_title"] = json!("Open in netmon");
        }
        Ok(Request::json(url, &body))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::{chars, str_at};
    assert_eq!(r.url.path(), "/1/messages.json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(!str_at(&v, "/token").is_empty() && !str_at(&v, "/user").is_empty());
    let m = chars(&v["message"]);
    assert!((1..=MESSAGE_MAX).contains(&m));
    assert!(chars(&v["title"]) <= TITLE_MAX);
    let p = v["priority"].as_i64().unwrap();
    assert!((-2..=2).contains(&p));
    if p == 2 {
        assert!(v["retry"].as_u64().unwrap() >= 30 && v["expire"].as_u64().unwrap() <= 10_800);
    }
    if let Some(u) = v.get("url") {
        assert!(chars(u) <= URL_MAX && chars(&v["url_title"]) <= URL_TITLE_MAX);
    }
    assert!([0, 1].contains(&v["html"].as_u64().unwrap()));
}
