//! The one escaping function for everything the status page and badges print: HTML text,
//! attribute values and SVG/XML alike.

use std::borrow::Cow;

/// Escapes `& < > " '` and replaces characters XML 1.0 forbids even as references (most C0
/// controls, U+FFFE, U+FFFF) with U+FFFD, so any user string yields well-formed markup.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_work) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if forbidden_in_xml(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_work(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'') || forbidden_in_xml(c)
}

fn forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("API (eu-west) — ok ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn markup_and_quotes_are_neutralised() {
        let hostile = r#"<script>alert(1)</script>" onmouseover='x' &amp;"#;
        let got = escape(hostile);
        assert_eq!(
            got,
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&#39;x&#39; &amp;amp;"
        );
        // Inside an attribute and as text, the parser gives back exactly the input.
        let doc = format!("<r a=\"{got}\" b='{got}'>{got}</r>");
        let xml = roxmltree::Document::parse(&doc).expect("well-formed");
        let root = xml.root_element();
        assert_eq!(root.attribute("a"), Some(hostile));
        assert_eq!(root.attribute("b"), Some(hostile));
        assert_eq!(root.text(), Some(hostile));
    }

    #[test]
    fn characters_xml_forbids_are_replaced() {
        let got = escape("a\u{0}b\u{1B}c\td\ne\u{FFFF}");
        assert_eq!(got, "a\u{FFFD}b\u{FFFD}c\td\ne\u{FFFD}");
        assert!(roxmltree::Document::parse(&format!("<r>{got}</r>")).is_ok());
    }
}
