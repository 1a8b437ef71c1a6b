//! `pat(...)` matching: `*` is any run of characters (also none), `?` exactly one character,
//! everything else itself. The whole text must match, case-sensitively.
//!
//! Linear in the text: the pattern is split at its `*`s; the first piece must match at the start,
//! the last at the end, and each piece between is placed at its leftmost match after the one
//! before (leaving the most room for the rest, so a greedy choice is never wrong and nothing is
//! ever retried). Pieces are found with a bit-parallel (Shift-And) scan, so a text character is
//! looked at once per piece that scans it and pieces scan disjoint stretches: the cost is
//! O(text × ⌈piece/64⌉), and pieces are bounded by the condition length limit.

/// Whether `text` matches `pattern` as a whole.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let pat: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let pieces: Vec<&[char]> = pat.split(|&c| c == '*').collect();
    let (first, last) = match pieces.as_slice() {
        [only] => return only.len() == text.len() && fits(only, &text),
        [first, .., last] => (*first, *last),
        [] => return text.is_empty(),
    };
    if first.len() + last.len() > text.len() {
        return false;
    }
    let end = text.len() - last.len();
    if !fits(first, &text[..first.len()]) || !fits(last, &text[end..]) {
        return false;
    }
    let mut at = first.len();
    for piece in &pieces[1..pieces.len() - 1] {
        if piece.is_empty() {
            continue;
        }
        match find(piece, &text[at..end]) {
            Some(start) => at += start + piece.len(),
            None => return false,
        }
    }
    true
}

/// `piece` matches `text` of the same length position by position (`?` matches anything).
fn fits(piece: &[char], text: &[char]) -> bool {
    piece.len() == text.len() && piece.iter().zip(text).all(|(&p, &t)| p == '?' || p == t)
}

/// The start of the leftmost match of `piece` (not empty) in `text`.
fn find(piece: &[char], text: &[char]) -> Option<usize> {
    let len = piece.len();
    if len > text.len() {
        return None;
    }
    let words = len.div_ceil(64);
    // Bit i of a mask: position i of the piece accepts that character.
    let mut any = vec![0u64; words];
    for (i, _) in piece.iter().enumerate().filter(|(_, c)| **c == '?') {
        any[i / 64] |= 1 << (i % 64);
    }
    let mut masks: std::collections::HashMap<char, Vec<u64>> = std::collections::HashMap::new();
    for (i, &c) in piece.iter().enumerate().filter(|(_, c)| **c != '?') {
        masks.entry(c).or_insert_with(|| any.clone())[i / 64] |= 1 << (i % 64);
    }
    let top = ((len - 1) / 64, 1u64 << ((len - 1) % 64));
    // Bit i of `state`: the piece's first i+1 characters end at the current text position.
    let mut state = vec![0u64; words];
    for (pos, c) in text.iter().enumerate() {
        let mask = masks.get(c).unwrap_or(&any);
        let mut carry = 1u64;
        for (s, m) in state.iter_mut().zip(mask) {
            let next_carry = *s >> 63;
            *s = ((*s << 1) | carry) & m;
            carry = next_carry;
        }
        if state[top.0] & top.1 != 0 {
            return Some(pos + 1 - len);
        }
    }
    None
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
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*a?c*", "xxabxabc", true),
            ("*ab?d*ab?d", "abxdabyd", true),
            ("*ab?d*ab?d", "abxd", false),
            ("?*?", "ab", true),
            ("?*?", "a", false),
        ];
        for (pattern, text, want) in table {
            assert_eq!(matches(pattern, text), want, "pat({pattern}) vs {text:?}");
        }
    }

    /// Pieces longer than one 64-bit word carry bits across words.
    #[test]
    fn long_pieces() {
        let piece: String = (0..200)
            .map(|i| if i % 7 == 0 { '?' } else { 'a' })
            .collect();
        let text = format!("{}b{}c", "a".repeat(300), "a".repeat(200));
        assert!(matches(&format!("*{piece}*"), &text));
        assert!(matches(&format!("*b{piece}c"), &text));
        assert!(!matches(&format!("*b{piece}ac"), &text));
        assert!(!matches(&format!("*c{piece}*"), &text));
    }

    /// The same answers as a plain recursive matcher on every short pattern and text over a
    /// small alphabet.
    #[test]
    fn agrees_with_a_reference_matcher() {
        fn reference(p: &[char], t: &[char]) -> bool {
            match (p.first(), t.first()) {
                (None, None) => true,
                (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
                (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
                (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
                _ => false,
            }
        }
        fn all(alphabet: &[char], max: usize) -> Vec<String> {
            let mut out = vec![String::new()];
            let mut layer = vec![String::new()];
            for _ in 0..max {
                layer = layer
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                    .collect();
                out.extend(layer.iter().cloned());
            }
            out
        }
        let patterns = all(&['a', 'b', '*', '?'], 5);
        let texts = all(&['a', 'b'], 6);
        for p in &patterns {
            let pc: Vec<char> = p.chars().collect();
            for t in &texts {
                let tc: Vec<char> = t.chars().collect();
                assert_eq!(matches(p, t), reference(&pc, &tc), "pat({p}) vs {t:?}");
            }
        }
    }

    #[test]
    fn large_text_is_fine() {
        let text = "a".repeat(1_000_000);
        assert!(!matches("*b*", &text));
        assert!(matches("a*a", &text));
    }

    /// The attack that stalled the monitor: a long run of `a` then `b` against a body of `a`s.
    /// A backtracking matcher needs pattern × text steps (about 2·10⁹ here); this one a few
    /// million.
    #[test]
    fn pathological_patterns_are_linear() {
        let body = "a".repeat(64 * 1024);
        for pattern in [
            format!("*{}b", "a".repeat(1000)),
            format!("*{}b*", "a".repeat(1000)),
            format!("{}*b", "a?".repeat(500)),
            "*a".repeat(500) + "b",
        ] {
            let t = std::time::Instant::now();
            assert!(!matches(&pattern, &body));
            assert!(
                t.elapsed() < std::time::Duration::from_millis(250),
                "{:?} for a {}-character pattern",
                t.elapsed(),
                pattern.len()
            );
        }
    }
}
