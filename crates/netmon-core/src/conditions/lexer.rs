//! Character cursor and the small token readers the parser builds on. Positions are character
//! indexes so error columns match what a user counts in their editor, whatever the UTF-8.

use super::ConditionError;

pub(crate) fn error(column: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        column,
        message: message.into(),
    }
}

pub(crate) struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(source: &str) -> Self {
        Self {
            chars: source.chars().collect(),
            pos: 0,
        }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(ahead)).copied()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// 1-based column of the next character (one past the end at end of input).
    pub(crate) fn col(&self) -> usize {
        self.pos + 1
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    pub(crate) fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.slice(start, self.pos)
    }

    /// Source text between two character indexes (0-based), clamped to the input.
    pub(crate) fn slice(&self, start: usize, end: usize) -> String {
        let end = end.min(self.chars.len());
        let start = start.min(end);
        self.chars[start..end].iter().collect()
    }

    pub(crate) fn index(&self) -> usize {
        self.pos
    }

    /// Moves back to an index returned by [`Cursor::index`], to read the same text another way.
    pub(crate) fn reset(&mut self, index: usize) {
        self.pos = index.min(self.chars.len());
    }

    /// Everything from the cursor to the end, which is consumed.
    pub(crate) fn take_rest(&mut self) -> String {
        let start = self.pos;
        self.pos = self.chars.len();
        self.slice(start, self.pos)
    }

    /// What an error message quotes as "found `...`": the next run of non-space characters,
    /// capped so a pasted body does not flood the message.
    pub(crate) fn snippet(&self) -> String {
        let mut out: String = self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .take_while(|c| !c.is_whitespace())
            .take(21)
            .collect();
        if out.chars().count() > 20 {
            out = out.chars().take(20).collect::<String>() + "…";
        }
        if out.is_empty() {
            "end of input".to_owned()
        } else {
            format!("`{out}`")
        }
    }
}

/// Characters of an unquoted value (`UP`, `127.0.0.1`, `2001:db8::1`, `48h`). Structural
/// characters end it so `any(a,b)` and `[STATUS]==200` split where a reader expects.
pub(crate) fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | ',' | '"' | '[' | ']' | '=' | '!' | '<' | '>')
}

/// Characters of a JSON path key after `.`; `.` and `[` start the next segment.
pub(crate) fn is_key_char(c: char) -> bool {
    is_word_char(c) && c != '.'
}

/// Header names are RFC 9110 tokens in practice limited to these; keeping `!` out lets
/// `[HEADERS].X!=1` read as an operator.
pub(crate) fn is_header_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Reads a double-quoted string at the cursor (which must be on `"`). Only `\"` and `\\` are
/// escapes; anything else after a backslash is refused so typos do not silently change a value.
pub(crate) fn read_quoted(cur: &mut Cursor) -> Result<String, ConditionError> {
    let open = cur.col();
    cur.bump();
    let mut out = String::new();
    loop {
        let col = cur.col();
        match cur.bump() {
            None => return Err(error(open, "unterminated string: missing closing `\"`")),
            Some('"') => return Ok(out),
            Some('\\') => match cur.bump() {
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(c) => {
                    return Err(error(
                        col,
                        format!("unknown escape `\\{c}` in string: only \\\" and \\\\ are allowed"),
                    ));
                }
                None => return Err(error(open, "unterminated string: missing closing `\"`")),
            },
            Some(c) => out.push(c),
        }
    }
}

/// `-?digits(.digits)?` — stricter than `f64::from_str`, which would take `inf`, `NaN` or `1e3`.
pub(crate) fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

/// `0x1F`, `0o17`, `0b101` (any case, optional sign): integers as Gatus reads them with Go's
/// `strconv.ParseInt(s, 0, 64)`, so `"0x1"` in a body equals `1`. A plain leading zero stays
/// decimal (`017` is seventeen; Go would read octal fifteen).
pub(crate) fn prefixed_int(s: &str) -> Option<f64> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let radix = match unsigned.get(..2) {
        Some("0x" | "0X") => 16,
        Some("0o" | "0O") => 8,
        Some("0b" | "0B") => 2,
        _ => return None,
    };
    let digits = &unsigned[2..];
    // from_str_radix would accept a second sign after the prefix.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -(n as f64) } else { n as f64 })
}

/// Starts with a digit, has a letter, and is only letters, digits and dots: meant as a duration
/// (`48h`, `1h30m`, also mistakes like `10x` or `1.5s` that should be refused, not compared as
/// text).
pub(crate) fn looks_like_duration(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().any(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations() {
        let table = [
            ("200", true, false),
            ("-1", true, false),
            ("0.5", true, false),
            ("1.", false, false),
            (".5", false, false),
            ("-", false, false),
            ("1e3", false, true),
            ("inf", false, false),
            ("NaN", false, false),
            ("127.0.0.1", false, false),
            ("48h", false, true),
            ("1h30m", false, true),
            ("1.5s", false, true),
            ("UP", false, false),
            ("2001:db8::1", false, false),
        ];
        for (s, number, duration) in table {
            assert_eq!(is_number(s), number, "is_number({s})");
            assert_eq!(looks_like_duration(s), duration, "looks_like_duration({s})");
        }
    }

    #[test]
    fn prefixed_integers_as_go_reads_them() {
        let table: [(&str, Option<f64>); 14] = [
            ("0x1", Some(1.0)),
            ("0xF", Some(15.0)),
            ("0XC0ff33", Some(12_648_243.0)),
            ("0o2", Some(2.0)),
            ("0O17", Some(15.0)),
            ("0b0010", Some(2.0)),
            ("-0x10", Some(-16.0)),
            ("+0b1", Some(1.0)),
            ("0x", None),
            ("0x-1", None),
            ("0b2", None),
            ("0o8", None),
            ("017", None),
            ("0x10000000000000000", None),
        ];
        for (s, want) in table {
            assert_eq!(prefixed_int(s), want, "{s}");
        }
    }

    #[test]
    fn quoted_strings() {
        let table: [(&str, Result<&str, usize>); 6] = [
            (r#""a b""#, Ok("a b")),
            (r#""say \"hi\"""#, Ok(r#"say "hi""#)),
            (r#""back\\slash""#, Ok(r"back\slash")),
            (r#""""#, Ok("")),
            (r#""open"#, Err(1)),
            (r#""bad \n""#, Err(6)),
        ];
        for (src, want) in table {
            let got = read_quoted(&mut Cursor::new(src));
            match want {
                Ok(s) => assert_eq!(got.as_deref(), Ok(s), "{src}"),
                Err(col) => assert_eq!(got.map_err(|e| e.column), Err(col), "{src}"),
            }
        }
    }

    #[test]
    fn snippet_is_capped() {
        let cur = Cursor::new("abcdefghijklmnopqrstuvwxyz rest");
        assert_eq!(cur.snippet(), "`abcdefghijklmnopqrst…`");
        let mut cur = Cursor::new("x");
        cur.bump();
        assert_eq!(cur.snippet(), "end of input");
    }
}
