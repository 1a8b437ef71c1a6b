//! Telegram Bot API `sendMessage` in HTML parse mode (every value escaped), optionally into a
//! forum topic.

use netmon_core::channel::TelegramChannel;
use serde_json::json;

use super::{Notice, Provider, RenderError, Request, clip, escape_html, on_host};

/// Telegram's limit on message text (after entity parsing; the raw text is kept below it).
#[cfg(test)]
pub(super) const TEXT_MAX: usize = 4_096;

/// `123456:ABC-def_…`: anything else cannot be a bot token, and must not reach the URL path.
fn valid_token(t: &str) -> bool {
    t.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.chars().all(|c| c.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// The message as Telegram HTML; each value is clipped before escaping so no tag or entity is
/// ever cut, and the total stays under the limit.
pub(super) fn html(n: &Notice) -> String {
    let mut out = format!(
        "<b>{}</b>\n{}",
        escape_html(&clip(&n.title(), 300)),
        escape_html(&clip(&n.headline(), 600))
    );
    for (k, v) in n.facts() {
        out.push_str(&format!("\n<b>{k}:</b> {}", escape_html(&clip(&v, 400))));
    }
    if let Some(link) = &n.link {
        out.push_str(&format!(
            "\n<a href=\"{}\">Open in netmon</a>",
            escape_html(link.as_str()).replace('"', "&quot;")
        ));
    }
    out
}

impl Provider for TelegramChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let token = self.bot_token.expose();
        if !valid_token(token) {
            return Err(RenderError(
                "telegram bot_token is not of the form 123456:ABC…".into(),
            ));
        }
        let url = on_host(&self.base(), &[&format!("bot{token}"), "sendMessage"])?;
        let mut body = json!({
            "chat_id": self.chat_id,
            "text": html(n),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        });
        if let Some(thread) = self.thread_id {
            body["message_thread_id"] = json!(thread);
        }
        Ok(Request::json(url, &body))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::str_at;
    assert!(r.url.path().ends_with("/sendMessage") && r.url.path().starts_with("/bot"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["parse_mode"], "HTML");
    assert!(v["chat_id"].is_string() || v["chat_id"].is_i64());
    let text = str_at(&v, "/text");
    // Telegram counts the text after parsing: tags gone, each entity one character.
    let mut visible = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => visible.push(c),
            _ => {}
        }
    }
    for e in ["&lt;", "&gt;", "&quot;", "&amp;"] {
        visible = visible.replace(e, "x");
    }
    assert!((1..=TEXT_MAX).contains(&visible.chars().count()));
    // Only the tags netmon writes, and every `<` is one of them (the rest was escaped).
    let tags = text.matches('<').count();
    let ours = ["<b>", "</b>", "<a href=", "</a>"]
        .iter()
        .map(|t| text.matches(t).count())
        .sum::<usize>();
    assert_eq!(tags, ours, "{text}");
}
