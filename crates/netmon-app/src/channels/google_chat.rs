//! Google Chat space webhooks: a text message in Chat's own formatting (`*bold*`).

use netmon_core::channel::GoogleChatChannel;
use serde_json::json;

use super::{Notice, Provider, RenderError, Request, clip};

/// Google Chat's limit on message text.
pub(super) const TEXT_MAX: usize = 4_096;

impl Provider for GoogleChatChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let mut text = format!("*{}*\n{}", clip(&n.title(), 300), clip(&n.headline(), 600));
        for (k, v) in n.facts() {
            text.push_str(&format!("\n*{k}:* {}", clip(&v, 400)));
        }
        if let Some(link) = &n.link {
            text.push_str(&format!("\n<{link}|Open in netmon>"));
        }
        Ok(Request::json(
            self.url.expose().clone(),
            &json!({ "text": clip(&text, TEXT_MAX) }),
        ))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::chars;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let n = chars(&v["text"]);
    assert!((1..=TEXT_MAX).contains(&n));
    assert_eq!(v.as_object().unwrap().len(), 1, "text only");
}
