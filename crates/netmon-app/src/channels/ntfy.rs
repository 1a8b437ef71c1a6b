//! ntfy: JSON publishing to the server's root (the public ntfy.sh or a self-hosted server), with
//! title, priority, tags and a click link; a token for protected topics.

use netmon_core::channel::NtfyChannel;
use serde_json::json;

use super::{Notice, Phase, Provider, RenderError, Request, clip};

/// ntfy's default message size limit, in bytes.
#[cfg(test)]
pub(super) const MESSAGE_MAX_BYTES: usize = 4_096;

impl Provider for NtfyChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let (default_priority, tag) = match n.phase {
            Phase::Opened => (4, "rotating_light"),
            Phase::Reminder(_) => (4, "warning"),
            Phase::Resolved => (3, "white_check_mark"),
        };
        let mut tags = vec![tag.to_owned()];
        tags.extend(self.tags.iter().cloned());
        // Characters are up to 4 bytes: 1000 characters always fit in 4096 bytes.
        let mut body = json!({
            "topic": self.topic,
            "title": clip(&n.title(), 250),
            "message": clip(&n.plain(), 1_000),
            "priority": self.priority.unwrap_or(default_priority),
            "tags": tags,
        });
        if let Some(link) = &n.link {
            body["click"] = json!(link.as_str());
        }
        let req = Request::json(self.server.clone(), &body);
        Ok(match &self.token {
            Some(t) => req.header("Authorization", format!("Bearer {}", t.expose())),
            None => req,
        })
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::str_at;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let topic = str_at(&v, "/topic");
    assert!((1..=64).contains(&topic.len()));
    assert!(str_at(&v, "/message").len() <= MESSAGE_MAX_BYTES);
    assert!(!str_at(&v, "/title").is_empty());
    assert!((1..=5).contains(&v["priority"].as_u64().unwrap()));
    assert!(v["tags"].as_array().unwrap().iter().all(|t| t.is_string()));
}
