//! `pat(...)` matching: `*` is any run of characters (also none), `?` exactly one character,
//! everything else itself. The whole text must match, case-sensitively.

/// Iterative matcher with a single backtrack point: O(text × pattern) at worst and no recursion,
/// so a large body cannot blow the stack or run away.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let pat: Vec<char> = pattern.chars().collect();
    let next_char = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
    // `pi` indexes pattern chars, `ti` is a byte offset into `text`, always on a char boundary.
    let (mut pi, mut ti) = (0usize, 0usize);
    // After the last `*`: the pattern index following it and the text offset it currently eats up to.
    let mut star: Option<(usize, usize)> = None;
    loop {
        let tc = next_char(ti);
        match (pat.get(pi), tc) {
            (Some('*'), _) => {
                pi += 1;
                star = Some((pi, ti));
            }
            (Some('?'), Some(c)) => {
                pi += 1;
                ti += c.len_utf8();
            }
            (Some(&p), Some(c)) if p == c => {
                pi += 1;
                ti += c.len_utf8();
            }
            (None, None) => return true,
            _ => {
                // Mismatch: let the last `*` swallow one more character and retry from there.
                let Some((after_star, eaten)) = star else {
                    return false;
                };
                let Some(c) = next_char(eaten) else {
                    return false;
                };
                let resume = eaten + c.len_utf8();
                star = Some((after_star, resume));
                pi = after_star;
                ti = resume;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn table() {
        let table = [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "x", false),
            ("UP", "UP", true),
            ("UP", "up", false),
            ("john*", "john doe", true),
            ("john*", "jane", false),
            ("*doe", "john doe", true),
            ("*oh*", "john", true),
            ("j?hn", "john", true),
            ("j?hn", "jhn", false),
            ("?", "é", true),
            ("??", "é", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "example.com", false),
            ("10.0.*", "10.0.3.4", true),
            ("日本*", "日本語", true),
            ("**", "x", true),
            ("*?", "", false),
        ];
        for (pattern, text, want) in table {
            assert_eq!(matches(pattern, text), want, "pat({pattern}) vs {text:?}");
        }
    }

    #[test]
    fn large_text_is_fine() {
        let text = "a".repeat(1_000_000);
        assert!(!matches("*b*", &text));
        assert!(matches("a*a", &text));
    }
}
