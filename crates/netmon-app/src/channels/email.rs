//! Email: a subject plus a plain-text and an HTML body, rendered by a pure function and sent by
//! whichever [`netmon_core::ports::Mailer`] the host wires (SMTP in `netmon up`, SES on AWS).

use netmon_core::ports::Mail;

use super::{Notice, clip, escape_html};

/// Subjects stay well under RFC 5322's 78-character line advice once encoded, and one line.
pub(crate) const SUBJECT_MAX: usize = 150;

/// One line without control characters: values can hold newlines (a cause, a target name), and
/// a newline in a subject would be header injection.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Escapes for HTML text and attribute values alike.
fn esc(s: &str) -> String {
    escape_html(s).replace('"', "&quot;").replace('\'', "&#39;")
}

/// The message of `n`: the subject names state and target, the bodies say everything the
/// other channels say. Every stored string is escaped in the HTML part.
pub(crate) fn render(n: &Notice) -> Mail {
    let subject = match (&n.cause, n.phase) {
        (Some(c), super::Phase::Opened | super::Phase::Reminder(_)) => {
            format!("[netmon] {} — {c}", n.title())
        }
        _ => format!("[netmon] {}", n.title()),
    };
    let text = format!("{}\n\n{}\n\n-- \nnetmon\n", n.title(), n.plain());
    let colour = match n.phase {
        super::Phase::Resolved => "#2e7d32",
        _ => "#c62828",
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family:sans-serif\">\n\
         <h2 style=\"color:{colour}\">{title}</h2>\n<p>{headline}</p>\n<table>\n",
        title = esc(&n.title()),
        headline = esc(&n.headline()),
    );
    for (k, v) in n.facts() {
        html.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>\n",
            esc(&v)
        ));
    }
    html.push_str("</table>\n");
    if let Some(link) = &n.link {
        html.push_str(&format!(
            "<p><a href=\"{}\">Open in netmon</a></p>\n",
            esc(link.as_str())
        ));
    }
    html.push_str("</body></html>\n");
    Mail {
        subject: clip(&one_line(&subject), SUBJECT_MAX),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use netmon_core::channel::ChannelKind;
    use serde_json::json;

    use super::super::golden::{check_golden, samples};
    use super::*;

    /// What every mail transport needs: a one-line subject within the limit, both parts
    /// present, and no markup in the HTML but netmon's own.
    fn constraints(m: &Mail) {
        assert!(!m.subject.trim().is_empty());
        assert!(m.subject.chars().count() <= SUBJECT_MAX, "{}", m.subject);
        assert!(!m.subject.chars().any(char::is_control), "{:?}", m.subject);
        assert!(!m.text.trim().is_empty() && !m.html.trim().is_empty());
        assert!(m.html.starts_with("<!DOCTYPE html>") && m.html.ends_with("</html>\n"));
        let ours = [
            "<!DOCTYPE html>",
            "<html>",
            "</html>",
            "<head>",
            "</head>",
            "<meta ",
            "<title>",
            "</title>",
            "<body ",
            "</body>",
            "<h2 ",
            "</h2>",
            "<p>",
            "</p>",
            "<table>",
            "</table>",
            "<tr>",
            "</tr>",
            "<th ",
            "</th>",
            "<td>",
            "</td>",
            "<a href=",
            "</a>",
        ];
        let tags = m.html.matches('<').count();
        let known: usize = ours.iter().map(|t| m.html.matches(t).count()).sum();
        assert_eq!(tags, known, "markup that netmon did not write: {}", m.html);
    }

    fn notices(name: &str, detail: &str, link: Option<&url::Url>) -> Vec<(&'static str, Notice)> {
        samples(name, detail)
            .into_iter()
            .map(|(e, env)| (e, Notice::of(&env, link).unwrap()))
            .collect()
    }

    #[test]
    fn renderings_match_the_golden_files_and_the_constraints() {
        let link = url::Url::parse("https://netmon.example.com/").unwrap();
        let mut renderings = Vec::new();
        for (event, n) in notices("Shop <API> & \"checkout\"", "503", Some(&link)) {
            let m = render(&n);
            constraints(&m);
            assert!(!m.html.contains("<API>"));
            assert!(event == "test" || m.html.contains("Shop &lt;API&gt; &amp; &quot;checkout"));
            renderings.push((
                format!("email.{event}.json"),
                json!({"subject": m.subject, "text": m.text, "html": m.html}),
            ));
        }
        check_golden(renderings);
    }

    #[test]
    fn hostile_and_oversized_values_stay_within_the_constraints() {
        let name = "N\r\nBcc: evil@example.com<script>&".repeat(100);
        let detail = "x<&>\"'\u{1F525}\n".repeat(2_000);
        let link = url::Url::parse("https://netmon.example.com/\"><script>/").unwrap();
        for l in [None, Some(&link)] {
            for (_, n) in notices(&name, &detail, l) {
                let m = render(&n);
                constraints(&m);
                assert!(!m.html.contains("<script>"));
            }
        }
    }

    #[test]
    fn every_message_names_target_state_time_cause_and_location() {
        for (event, n) in notices("Shop API", "503", None) {
            let m = render(&n);
            for part in [&m.text, &m.html] {
                assert!(part.contains(n.state()), "{event}");
                assert!(part.contains(&n.target_name), "{event}");
            }
            assert!(m.subject.contains(n.state()) && m.subject.contains(&n.target_name));
            if event == "opened" || event == "reminder" {
                for must in ["2026-03-01 10:00:00 UTC", "(got 503)", "eu-west-1"] {
                    assert!(m.text.contains(must) && m.html.contains(must), "{must}");
                }
            }
        }
    }

    #[test]
    fn the_kind_parses() {
        let spec: netmon_core::channel::ChannelSpec = serde_json::from_value(json!({
            "id": "mail",
            "email": {"from": "netmon@example.com", "to": ["ops@example.com"],
                      "smtp": {"host": "smtp.example.com", "tls": "tls", "password": "pw"}}
        }))
        .unwrap();
        assert!(matches!(spec.kind, ChannelKind::Email(_)));
        assert_eq!(spec.kind.name(), "email");
    }
}
