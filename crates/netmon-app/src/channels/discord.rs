//! Discord webhooks: one embed (title, description, colour, fields), within Discord's limits,
//! with mentions disabled so a target name cannot ping `@everyone`.

use netmon_core::channel::DiscordChannel;
use serde_json::{Value, json};

use super::{Notice, Phase, Provider, RenderError, Request, clip};

pub(super) const TITLE_MAX: usize = 256;
#[cfg(test)]
pub(super) const DESCRIPTION_MAX: usize = 4_096;
pub(super) const FIELDS_MAX: usize = 25;
#[cfg(test)]
pub(super) const FIELD_NAME_MAX: usize = 256;
#[cfg(test)]
pub(super) const FIELD_VALUE_MAX: usize = 1_024;
#[cfg(test)]
pub(super) const FOOTER_MAX: usize = 2_048;
/// The sum of title, description, field names and values, footer and author of all embeds.
#[cfg(test)]
pub(super) const EMBED_TOTAL_MAX: usize = 6_000;

/// Per field value, below Discord's 1024 so seven fields, the title and the description stay
/// within the 6000-character total.
const FIELD_BUDGET: usize = 600;

fn colour(n: &Notice) -> u32 {
    match n.phase {
        Phase::Opened => 0xD9_53_4F,
        Phase::Reminder(_) => 0xE8_91_2D,
        Phase::Resolved => 0x2E_B6_7D,
    }
}

impl Provider for DiscordChannel {
    fn render(&self, n: &Notice) -> Result<Request, RenderError> {
        let fields: Vec<Value> = n
            .facts()
            .into_iter()
            .take(FIELDS_MAX)
            .map(|(k, v)| {
                json!({"name": k, "value": clip(&v, FIELD_BUDGET), "inline": k != "Cause" && k != "Check"})
            })
            .collect();
        let mut embed = json!({
            "title": clip(&n.title(), TITLE_MAX),
            "description": clip(&n.headline(), 1_000),
            "color": colour(n),
            "fields": fields,
            "timestamp": n.at.to_rfc3339(),
            "footer": {"text": "netmon"},
        });
        if let Some(link) = &n.link {
            embed["url"] = json!(link.as_str());
        }
        let body = json!({
            "username": "netmon",
            "allowed_mentions": {"parse": []},
            "embeds": [embed],
        });
        Ok(Request::json(self.url.expose().clone(), &body))
    }
}

#[cfg(test)]
pub(super) fn constraints(r: &Request) {
    use super::json_checks::chars;
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["allowed_mentions"]["parse"], json!([]));
    let embeds = v["embeds"].as_array().unwrap();
    assert!(!embeds.is_empty() && embeds.len() <= 10);
    let e = &embeds[0];
    assert!(chars(&e["title"]) <= TITLE_MAX && chars(&e["description"]) <= DESCRIPTION_MAX);
    assert!(e["color"].as_u64().unwrap() <= 0xFF_FF_FF);
    assert!(chars(&e["footer"]["text"]) <= FOOTER_MAX);
    let fields = e["fields"].as_array().unwrap();
    assert!(fields.len() <= FIELDS_MAX);
    let mut total = chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
    for f in fields {
        let (name, value) = (chars(&f["name"]), chars(&f["value"]));
        assert!((1..=FIELD_NAME_MAX).contains(&name) && (1..=FIELD_VALUE_MAX).contains(&value));
        total += name + value;
    }
    assert!(total <= EMBED_TOTAL_MAX, "{total}");
    chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
}
