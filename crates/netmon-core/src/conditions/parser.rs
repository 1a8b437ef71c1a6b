//! Parses `LEFT OP RIGHT` into an [`Expr`] and checks that the two sides can be compared, so a
//! bad condition is refused when the target is saved rather than failing every probe.

use super::ConditionError;
use super::lexer::{
    Cursor, error, is_header_char, is_key_char, is_number, is_word_char, looks_like_duration,
    prefixed_int, read_quoted,
};
use crate::duration::{DurationError, parse_duration};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub left: Left,
    pub op: Op,
    pub right: Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Left {
    Value(Placeholder),
    Len(Placeholder),
    Has(Placeholder),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Placeholder {
    Status,
    ResponseTime,
    /// Empty path = the whole body as text.
    Body(Vec<Segment>),
    Header(String),
    CertificateExpiration,
    Connected,
    DnsRcode,
    Ip,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Right {
    Literal(Literal),
    Pat(String),
    Any(Vec<Literal>),
    /// A placeholder, `len(...)` or `has(...)`, resolved like the left-hand side: Gatus allows
    /// `[BODY].a == [BODY].b`.
    Placeholder(Left),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Literal {
    pub kind: LiteralKind,
    /// The value as written (string content without quotes), for text comparison.
    pub text: String,
    /// Where it starts, for type errors found after parsing.
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LiteralKind {
    Number(f64),
    /// A duration literal, in milliseconds.
    Millis(f64),
    Bool(bool),
    Text,
}

const PLACEHOLDERS: &str = "[STATUS], [RESPONSE_TIME], [BODY], [HEADERS].Name, \
                            [CERTIFICATE_EXPIRATION], [CONNECTED], [DNS_RCODE] or [IP]";
const OPERATORS: &str = "==, !=, <, <=, > or >=";

pub(crate) fn parse(source: &str) -> Result<Expr, ConditionError> {
    // Bounds the work of every evaluation (a `pat()` costs text × ⌈pattern/64⌉).
    if let Some((at, _)) = source.char_indices().nth(super::MAX_CONDITION_CHARS) {
        let column = source[..at].chars().count() + 1;
        return Err(error(
            column,
            format!(
                "a condition may be at most {} characters long",
                super::MAX_CONDITION_CHARS
            ),
        ));
    }
    let mut cur = Cursor::new(source);
    cur.skip_ws();
    if cur.at_end() {
        return Err(error(1, "empty condition"));
    }
    let left_start = cur.index();
    let left = parse_left(&mut cur)?;
    let left_text = cur.slice(left_start, cur.index());
    cur.skip_ws();
    let op_col = cur.col();
    let op = parse_op(&mut cur)?;
    cur.skip_ws();
    let right_col = cur.col();
    let right_start = cur.index();
    let right = parse_right(&mut cur, op)?;
    if let Right::Placeholder(other) = &right {
        let right_text = cur.slice(right_start, cur.index());
        check_pair(&left, &left_text, op, op_col, other, &right_text, right_col)?;
    } else {
        check_types(&left, &left_text, op, op_col, &right, right_col)?;
    }
    cur.skip_ws();
    if !cur.at_end() {
        let col = cur.col();
        let message = if cur.peek() == Some(')') {
            "unexpected `)` with no matching `(`".to_owned()
        } else {
            format!(
                "unexpected {} after the condition (quote values that contain spaces)",
                cur.snippet()
            )
        };
        return Err(error(col, message));
    }
    Ok(Expr { left, op, right })
}

fn parse_left(cur: &mut Cursor) -> Result<Left, ConditionError> {
    let col = cur.col();
    match cur.peek() {
        Some('[') => parse_placeholder(cur).map(Left::Value),
        Some(c) if c.is_ascii_alphabetic() => {
            let name = cur.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            if cur.peek() != Some('(') {
                let hint = if placeholder_from_name(&name).is_some() {
                    format!(" (did you mean [{name}]?)")
                } else {
                    String::new()
                };
                return Err(error(
                    col,
                    format!(
                        "expected a placeholder such as [STATUS], or len(...) or has(...), \
                         found `{name}`{hint}"
                    ),
                ));
            }
            match name.as_str() {
                "len" => {
                    let (arg_col, ph) = parse_call_arg(cur, "len")?;
                    if !matches!(ph, Placeholder::Body(_) | Placeholder::Header(_)) {
                        return Err(error(arg_col, "len() measures [BODY] or [HEADERS] values"));
                    }
                    Ok(Left::Len(ph))
                }
                "has" => parse_call_arg(cur, "has").map(|(_, ph)| Left::Has(ph)),
                "pat" | "any" => Err(error(
                    col,
                    format!(
                        "{name}() belongs on the right-hand side, e.g. [BODY].name == {name}(...)"
                    ),
                )),
                _ => Err(error(
                    col,
                    format!(
                        "unknown function `{name}`: use len() or has() on the left, pat() or any() on the right"
                    ),
                )),
            }
        }
        Some('=' | '!' | '<' | '>') => Err(error(
            col,
            "missing left-hand side: expected a placeholder such as [STATUS] before the operator",
        )),
        _ => Err(error(
            col,
            format!(
                "expected a placeholder such as [STATUS], or len(...) or has(...), found {}",
                cur.snippet()
            ),
        )),
    }
}

/// The single placeholder argument of `len(...)`/`has(...)`; the cursor is on `(`.
fn parse_call_arg(cur: &mut Cursor, name: &str) -> Result<(usize, Placeholder), ConditionError> {
    let open = cur.col();
    cur.bump();
    cur.skip_ws();
    let arg_col = cur.col();
    let ph = match cur.peek() {
        None => return Err(error(open, "`(` is never closed")),
        Some(')') => {
            return Err(error(
                arg_col,
                format!("{name}() needs a placeholder, e.g. {name}([BODY].items)"),
            ));
        }
        Some('[') => parse_placeholder(cur)?,
        Some(_) => {
            return Err(error(
                arg_col,
                format!(
                    "{name}() takes a placeholder such as [BODY].items, found {}",
                    cur.snippet()
                ),
            ));
        }
    };
    cur.skip_ws();
    if cur.eat(')') {
        return Ok((arg_col, ph));
    }
    if cur.at_end() {
        return Err(error(open, "`(` is never closed"));
    }
    Err(error(
        cur.col(),
        format!("expected `)` to close {name}(, found {}", cur.snippet()),
    ))
}

fn placeholder_from_name(name: &str) -> Option<Placeholder> {
    Some(match name {
        "STATUS" => Placeholder::Status,
        "RESPONSE_TIME" => Placeholder::ResponseTime,
        "BODY" => Placeholder::Body(Vec::new()),
        "HEADERS" => Placeholder::Header(String::new()),
        "CERTIFICATE_EXPIRATION" => Placeholder::CertificateExpiration,
        "CONNECTED" => Placeholder::Connected,
        "DNS_RCODE" => Placeholder::DnsRcode,
        "IP" => Placeholder::Ip,
        _ => return None,
    })
}

/// A placeholder and its path; the cursor is on `[`.
fn parse_placeholder(cur: &mut Cursor) -> Result<Placeholder, ConditionError> {
    let open = cur.col();
    cur.bump();
    let name = cur.take_while(|c| c != ']' && !c.is_whitespace());
    if !cur.eat(']') {
        return Err(error(open, "`[` is never closed"));
    }
    let Some(ph) = placeholder_from_name(&name) else {
        let hint = if placeholder_from_name(&name.to_ascii_uppercase()).is_some() {
            " (placeholders are upper case)"
        } else {
            ""
        };
        return Err(error(
            open,
            format!("unknown placeholder `[{name}]`{hint}: use {PLACEHOLDERS}"),
        ));
    };
    match ph {
        Placeholder::Body(_) => parse_path(cur).map(Placeholder::Body),
        Placeholder::Header(_) => {
            let col = cur.col();
            if !cur.eat('.') {
                return Err(error(
                    col,
                    "[HEADERS] needs a header name, e.g. [HEADERS].Content-Type",
                ));
            }
            let header = cur.take_while(is_header_char);
            if header.is_empty() {
                return Err(error(
                    cur.col(),
                    "[HEADERS] needs a header name, e.g. [HEADERS].Content-Type",
                ));
            }
            Ok(Placeholder::Header(header))
        }
        other => {
            if matches!(cur.peek(), Some('.' | '[')) {
                return Err(error(
                    cur.col(),
                    format!("[{name}] has no fields: only [BODY] takes a path"),
                ));
            }
            Ok(other)
        }
    }
}

/// `.key` and `[index]` segments after `[BODY]`.
fn parse_path(cur: &mut Cursor) -> Result<Vec<Segment>, ConditionError> {
    let mut path = Vec::new();
    loop {
        match cur.peek() {
            Some('.') => {
                let dot = cur.col();
                cur.bump();
                let key = cur.take_while(is_key_char);
                if key.is_empty() {
                    return Err(error(dot, "empty path segment: expected a key after `.`"));
                }
                path.push(Segment::Key(key));
            }
            Some('[') => {
                let open = cur.col();
                cur.bump();
                let start = cur.col();
                let index = cur.take_while(|c| c != ']' && !c.is_whitespace());
                if !cur.eat(']') {
                    return Err(error(open, "`[` is never closed"));
                }
                if index.is_empty() {
                    return Err(error(open, "empty array index `[]`"));
                }
                if !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error(
                        start,
                        format!("array index must be a non-negative integer, found `{index}`"),
                    ));
                }
                let n = index
                    .parse::<usize>()
                    .map_err(|_| error(start, "array index is too large"))?;
                path.push(Segment::Index(n));
            }
            _ => return Ok(path),
        }
    }
}

fn parse_op(cur: &mut Cursor) -> Result<Op, ConditionError> {
    let col = cur.col();
    let (op, width) = match (cur.peek(), cur.peek_at(1)) {
        (Some('='), Some('=')) => (Op::Eq, 2),
        (Some('!'), Some('=')) => (Op::Ne, 2),
        (Some('<'), Some('=')) => (Op::Le, 2),
        (Some('>'), Some('=')) => (Op::Ge, 2),
        (Some('<'), _) => (Op::Lt, 1),
        (Some('>'), _) => (Op::Gt, 1),
        (Some('='), Some('>')) => return Err(error(col, "unknown operator `=>`: use `>=`")),
        (Some('='), Some('<')) => return Err(error(col, "unknown operator `=<`: use `<=`")),
        (Some('='), _) => return Err(error(col, "use `==` to compare, not `=`")),
        (None, _) => {
            return Err(error(
                col,
                format!("missing operator: expected {OPERATORS}"),
            ));
        }
        (Some(_), _) => {
            return Err(error(
                col,
                format!(
                    "expected an operator ({OPERATORS}), found {}",
                    cur.snippet()
                ),
            ));
        }
    };
    for _ in 0..width {
        cur.bump();
    }
    Ok(op)
}

fn parse_right(cur: &mut Cursor, op: Op) -> Result<Right, ConditionError> {
    let col = cur.col();
    let start = cur.index();
    match cur.peek() {
        None => Err(error(col, format!("missing value after `{}`", op.symbol()))),
        Some('"') => Ok(Right::Literal(Literal {
            kind: LiteralKind::Text,
            text: read_quoted(cur)?,
            column: col,
        })),
        // `[STATUS] === 200`: a mistyped operator, not text (Gatus refuses it too).
        Some('=') => Err(error(
            col,
            format!(
                "expected a value after `{}`, found {}",
                op.symbol(),
                cur.snippet()
            ),
        )),
        // `[1,2]` is text to Gatus; a typo such as `[STAUTS]` would then never match, so an
        // unknown bracket is refused and quoting it says "text" explicitly.
        Some('[') => parse_placeholder(cur)
            .map(|ph| Right::Placeholder(Left::Value(ph)))
            .map_err(|e| ConditionError {
                message: format!("{} (quote the value to compare with text)", e.message),
                ..e
            }),
        Some(c) if c.is_ascii_alphabetic() => {
            let word = cur.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            if cur.peek() != Some('(') {
                cur.reset(start);
                return unquoted_value(cur, col).map(Right::Literal);
            }
            match word.as_str() {
                "pat" => parse_pat(cur).map(Right::Pat),
                "any" => parse_any(cur).map(Right::Any),
                "len" | "has" => {
                    cur.reset(start);
                    parse_left(cur).map(Right::Placeholder)
                }
                _ => Err(error(
                    col,
                    format!(
                        "unknown function `{word}`: use pat() or any(), or quote the value to compare with text"
                    ),
                )),
            }
        }
        Some(_) => unquoted_value(cur, col).map(Right::Literal),
    }
}

/// An unquoted value runs to the end of the condition, as Gatus reads it (`[BODY] == not
/// found`). A second operator standing alone in it (`[BODY] == a == b`) is ambiguous: Gatus
/// would silently ignore what follows it.
fn unquoted_value(cur: &mut Cursor, col: usize) -> Result<Literal, ConditionError> {
    let rest = cur.take_rest();
    let text = rest.trim_end();
    let mut chars_before = 0;
    let mut previous_end = 0;
    for (start, token) in tokens(text) {
        chars_before += text[previous_end..start].chars().count();
        previous_end = start;
        if start > 0 && matches!(token, "==" | "!=" | "<" | "<=" | ">" | ">=") {
            return Err(error(
                col + chars_before,
                format!(
                    "a second operator `{token}` in the value: quote the value if `{token}` is part of the text"
                ),
            ));
        }
    }
    literal(text, col)
}

/// The white-space separated words of `text` with their byte offsets.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, &text[s..]));
    }
    words.into_iter()
}

/// A single word is classified (number, duration, boolean); anything with spaces or
/// punctuation is text.
fn literal(text: &str, col: usize) -> Result<Literal, ConditionError> {
    if text.chars().all(is_word_char) {
        classify(text.to_owned(), col)
    } else {
        Ok(Literal {
            kind: LiteralKind::Text,
            text: text.to_owned(),
            column: col,
        })
    }
}

/// `pat(glob)`; the cursor is on `(`. As in Gatus, a bare glob runs to the last `)` of the
/// condition, so `pat(*<div id="user">*)` and `pat(*(beta)*)` work unquoted. A glob that
/// starts with `"` is a quoted string (then `\"` and `\\` are its escapes).
fn parse_pat(cur: &mut Cursor) -> Result<String, ConditionError> {
    let open = cur.col();
    cur.bump();
    cur.skip_ws();
    match cur.peek() {
        None => Err(error(open, "`(` is never closed")),
        Some(')') => Err(error(
            cur.col(),
            "pat() needs a pattern, e.g. pat(*ok*) (use pat(\"\") for the empty string)",
        )),
        Some('"') => {
            let pattern = read_quoted(cur)?;
            cur.skip_ws();
            if cur.eat(')') {
                return Ok(pattern);
            }
            if cur.at_end() {
                return Err(error(open, "`(` is never closed"));
            }
            Err(error(
                cur.col(),
                format!("pat() takes one pattern; found {} after it", cur.snippet()),
            ))
        }
        Some(_) => {
            let start = cur.index();
            let rest = cur.take_rest();
            let Some(close) = rest.rfind(')') else {
                return Err(error(open, "`(` is never closed"));
            };
            let after = &rest[close + 1..];
            if !after.trim().is_empty() {
                // Point at what follows the last `)` and let the caller report it.
                let skipped = rest[..close + 1].chars().count()
                    + (after.chars().count() - after.trim_start().chars().count());
                cur.reset(start + skipped);
            }
            Ok(rest[..close].trim_end().to_owned())
        }
    }
}

/// `any(v1, v2, ...)`; the cursor is on `(`. Values are split at `,` and trimmed, as in Gatus,
/// so they may contain spaces; quote one to include `,` or `)`.
fn parse_any(cur: &mut Cursor) -> Result<Vec<Literal>, ConditionError> {
    let open = cur.col();
    cur.bump();
    let mut values = Vec::new();
    loop {
        cur.skip_ws();
        let col = cur.col();
        let value = match cur.peek() {
            None => return Err(error(open, "`(` is never closed")),
            Some(')') if values.is_empty() => {
                return Err(error(
                    col,
                    "any() needs at least one value, e.g. any(200, 204)",
                ));
            }
            Some(')' | ',') => {
                return Err(error(col, "missing value in any(): remove the extra `,`"));
            }
            Some('"') => Literal {
                kind: LiteralKind::Text,
                text: read_quoted(cur)?,
                column: col,
            },
            Some('[') => return Err(error(col, "any() takes values, not placeholders")),
            Some(_) => {
                let raw = cur.take_while(|c| c != ',' && c != ')');
                if raw.contains('(') {
                    return Err(error(col, "functions cannot be nested inside any()"));
                }
                literal(raw.trim_end(), col)?
            }
        };
        values.push(value);
        cur.skip_ws();
        if cur.eat(')') {
            return Ok(values);
        }
        if cur.at_end() {
            return Err(error(open, "`(` is never closed"));
        }
        if !cur.eat(',') {
            return Err(error(
                cur.col(),
                format!("expected `,` or `)` in any(), found {}", cur.snippet()),
            ));
        }
    }
}

/// Decides what an unquoted word means: boolean, number, duration or plain text.
fn classify(word: String, column: usize) -> Result<Literal, ConditionError> {
    let kind = if word == "true" || word == "false" {
        LiteralKind::Bool(word == "true")
    } else if let Some(n) = prefixed_int(&word) {
        LiteralKind::Number(n)
    } else if is_number(&word) {
        match word.parse::<f64>() {
            Ok(n) if n.is_finite() => LiteralKind::Number(n),
            _ => return Err(error(column, format!("number `{word}` is too large"))),
        }
    } else if looks_like_duration(&word) {
        if word.contains('.') {
            return Err(error(
                column,
                format!(
                    "`{word}` is not a valid duration: use whole numbers such as 1s500ms (or quote it to compare as text)"
                ),
            ));
        }
        match parse_duration(&word) {
            Ok(d) => LiteralKind::Millis(d.as_millis() as f64),
            Err(e) => {
                let why = match e {
                    DurationError::UnknownUnit(unit, _) => {
                        format!("unknown unit `{unit}` (use ms, s, m, h, d or w)")
                    }
                    DurationError::Overflow(_) => "too large".to_owned(),
                    other => other.to_string(),
                };
                return Err(error(
                    column,
                    format!(
                        "`{word}` is not a valid duration: {why} (quote it to compare as text)"
                    ),
                ));
            }
        }
    } else {
        LiteralKind::Text
    };
    Ok(Literal {
        kind,
        text: word,
        column,
    })
}

/// What the left-hand side yields, for checking the right-hand side against it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `[STATUS]`, `len(...)`: plain numbers.
    Count,
    /// `[RESPONSE_TIME]`, `[CERTIFICATE_EXPIRATION]`: milliseconds.
    Millis,
    /// `[CONNECTED]`, `has(...)`.
    Flag,
    /// `[DNS_RCODE]`, `[IP]`: text that never orders.
    Text,
    /// `[BODY]`, `[HEADERS]`: whatever the target sent.
    Any,
}

fn kind_of(left: &Left) -> Kind {
    match left {
        Left::Len(_) => Kind::Count,
        Left::Has(_) => Kind::Flag,
        Left::Value(ph) => match ph {
            Placeholder::Status => Kind::Count,
            Placeholder::ResponseTime | Placeholder::CertificateExpiration => Kind::Millis,
            Placeholder::Connected => Kind::Flag,
            Placeholder::DnsRcode | Placeholder::Ip => Kind::Text,
            Placeholder::Body(_) | Placeholder::Header(_) => Kind::Any,
        },
    }
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Count => "a number",
            Kind::Millis => "a duration",
            Kind::Flag => "true or false",
            Kind::Text => "text",
            Kind::Any => "any value",
        }
    }
}

/// Both sides are placeholders (or len()/has()): they must be comparable with the operator.
fn check_pair(
    left: &Left,
    left_text: &str,
    op: Op,
    op_col: usize,
    right: &Left,
    right_text: &str,
    right_col: usize,
) -> Result<(), ConditionError> {
    let (lk, rk) = (kind_of(left), kind_of(right));
    if op.is_ordering() {
        for (kind, text) in [(lk, left_text), (rk, right_text)] {
            if matches!(kind, Kind::Flag | Kind::Text) {
                return Err(error(
                    op_col,
                    format!(
                        "`{text}` is {}: `{}` needs numbers or durations on both sides",
                        kind.describe(),
                        op.symbol()
                    ),
                ));
            }
        }
    }
    if lk == rk || lk == Kind::Any || rk == Kind::Any {
        return Ok(());
    }
    Err(error(
        right_col,
        format!(
            "`{left_text}` is {} and `{right_text}` is {}: they cannot be compared",
            lk.describe(),
            rk.describe()
        ),
    ))
}

fn check_types(
    left: &Left,
    left_text: &str,
    op: Op,
    op_col: usize,
    right: &Right,
    right_col: usize,
) -> Result<(), ConditionError> {
    let kind = kind_of(left);
    let sym = op.symbol();
    if op.is_ordering() {
        match kind {
            Kind::Flag => {
                return Err(error(
                    op_col,
                    format!("`{left_text}` is true or false: compare it with == or !="),
                ));
            }
            Kind::Text => {
                return Err(error(
                    op_col,
                    format!("`{left_text}` is text: compare it with == or !="),
                ));
            }
            _ => {}
        }
        let lit = match right {
            Right::Pat(_) => {
                return Err(error(
                    right_col,
                    format!("pat() works only with == and !=, not `{sym}`"),
                ));
            }
            Right::Any(_) => {
                return Err(error(
                    right_col,
                    format!("any() works only with == and !=, not `{sym}`"),
                ));
            }
            Right::Literal(lit) => lit,
            Right::Placeholder(_) => return Ok(()),
        };
        return match lit.kind {
            LiteralKind::Number(_) => Ok(()),
            LiteralKind::Millis(_) => check_literal(kind, left_text, lit),
            LiteralKind::Bool(_) | LiteralKind::Text => Err(error(
                lit.column,
                format!(
                    "`{sym}` needs a number or a duration on the right, found `{}`",
                    lit.text
                ),
            )),
        };
    }
    match right {
        Right::Literal(lit) => check_literal(kind, left_text, lit),
        Right::Any(values) => values
            .iter()
            .try_for_each(|lit| check_literal(kind, left_text, lit)),
        // Checked by check_pair.
        Right::Placeholder(_) => Ok(()),
        Right::Pat(_) => match kind {
            Kind::Flag => Err(error(
                right_col,
                format!("`{left_text}` is true or false: compare it with true or false, not pat()"),
            )),
            Kind::Millis => Err(error(
                right_col,
                format!(
                    "`{left_text}` is a duration: compare it with <, >, a number of milliseconds or a duration, not pat()"
                ),
            )),
            Kind::Count | Kind::Text | Kind::Any => Ok(()),
        },
    }
}

/// Whether one literal suits the left-hand kind.
fn check_literal(kind: Kind, left_text: &str, lit: &Literal) -> Result<(), ConditionError> {
    let ok = matches!(
        (kind, lit.kind),
        (Kind::Text | Kind::Any, _)
            | (Kind::Count, LiteralKind::Number(_))
            | (
                Kind::Millis,
                LiteralKind::Number(_) | LiteralKind::Millis(_)
            )
            | (Kind::Flag, LiteralKind::Bool(_))
    );
    if ok {
        return Ok(());
    }
    let what = match kind {
        Kind::Count => "a number: compare it with a plain number",
        Kind::Millis => {
            "a duration: compare it with a number of milliseconds or a duration such as 300ms"
        }
        _ => "true or false: compare it with true or false",
    };
    Err(error(
        lit.column,
        format!("`{left_text}` is {what}, not `{}`", lit.text),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    #[test]
    fn accepts_and_builds_the_tree() {
        let table: Vec<(&str, Left, Op)> = vec![
            ("[STATUS] == 200", Left::Value(Placeholder::Status), Op::Eq),
            ("[STATUS]==200", Left::Value(Placeholder::Status), Op::Eq),
            (
                "  [STATUS]  !=  200  ",
                Left::Value(Placeholder::Status),
                Op::Ne,
            ),
            (
                "[RESPONSE_TIME] < 300ms",
                Left::Value(Placeholder::ResponseTime),
                Op::Lt,
            ),
            (
                "[RESPONSE_TIME] <= 1h30m",
                Left::Value(Placeholder::ResponseTime),
                Op::Le,
            ),
            (
                "[CERTIFICATE_EXPIRATION] > 48h",
                Left::Value(Placeholder::CertificateExpiration),
                Op::Gt,
            ),
            (
                "[CERTIFICATE_EXPIRATION] >= 172800000",
                Left::Value(Placeholder::CertificateExpiration),
                Op::Ge,
            ),
            (
                "[BODY] == pat(*ok*)",
                Left::Value(Placeholder::Body(vec![])),
                Op::Eq,
            ),
            (
                "[BODY].status == UP",
                Left::Value(Placeholder::Body(vec![key("status")])),
                Op::Eq,
            ),
            (
                "[BODY].data[0].id == 7",
                Left::Value(Placeholder::Body(vec![
                    key("data"),
                    Segment::Index(0),
                    key("id"),
                ])),
                Op::Eq,
            ),
            (
                "[BODY][0] == x",
                Left::Value(Placeholder::Body(vec![Segment::Index(0)])),
                Op::Eq,
            ),
            (
                "[BODY].m[1][2] == x",
                Left::Value(Placeholder::Body(vec![
                    key("m"),
                    Segment::Index(1),
                    Segment::Index(2),
                ])),
                Op::Eq,
            ),
            (
                "[BODY].é-ü_1 == ü",
                Left::Value(Placeholder::Body(vec![key("é-ü_1")])),
                Op::Eq,
            ),
            (
                "[BODY].a!=1",
                Left::Value(Placeholder::Body(vec![key("a")])),
                Op::Ne,
            ),
            (
                "[HEADERS].Content-Type == pat(application/json*)",
                Left::Value(Placeholder::Header("Content-Type".into())),
                Op::Eq,
            ),
            (
                "[HEADERS].X-Count>=10",
                Left::Value(Placeholder::Header("X-Count".into())),
                Op::Ge,
            ),
            (
                "[CONNECTED] == true",
                Left::Value(Placeholder::Connected),
                Op::Eq,
            ),
            (
                "[DNS_RCODE] == NOERROR",
                Left::Value(Placeholder::DnsRcode),
                Op::Eq,
            ),
            ("[IP] == 127.0.0.1", Left::Value(Placeholder::Ip), Op::Eq),
            ("[IP] != 2001:db8::1", Left::Value(Placeholder::Ip), Op::Ne),
            (
                "len([BODY].items) > 0",
                Left::Len(Placeholder::Body(vec![key("items")])),
                Op::Gt,
            ),
            (
                "len( [BODY] ) < 1000",
                Left::Len(Placeholder::Body(vec![])),
                Op::Lt,
            ),
            (
                "has([BODY].errors) == false",
                Left::Has(Placeholder::Body(vec![key("errors")])),
                Op::Eq,
            ),
            (
                "has([STATUS]) == true",
                Left::Has(Placeholder::Status),
                Op::Eq,
            ),
            (
                "[BODY].sha == \"3d6fabc\"",
                Left::Value(Placeholder::Body(vec![key("sha")])),
                Op::Eq,
            ),
        ];
        for (src, left, op) in table {
            let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!((expr.left, expr.op), (left, op), "{src}");
        }
    }

    #[test]
    fn classifies_right_hand_values() {
        use LiteralKind::*;
        let lit = |kind, text: &str, column| {
            Right::Literal(Literal {
                kind,
                text: text.to_owned(),
                column,
            })
        };
        let table = [
            ("[BODY].x == 200", lit(Number(200.0), "200", 13)),
            ("[BODY].x == -1", lit(Number(-1.0), "-1", 13)),
            ("[BODY].x == 0.5", lit(Number(0.5), "0.5", 13)),
            ("[BODY].x == 500ms", lit(Millis(500.0), "500ms", 13)),
            ("[BODY].x == 1h30m", lit(Millis(5_400_000.0), "1h30m", 13)),
            ("[BODY].x == 30d", lit(Millis(2_592_000_000.0), "30d", 13)),
            ("[BODY].x == true", lit(Bool(true), "true", 13)),
            ("[BODY].x == false", lit(Bool(false), "false", 13)),
            ("[BODY].x == True", lit(Text, "True", 13)),
            ("[BODY].x == UP", lit(Text, "UP", 13)),
            ("[BODY].x == 127.0.0.1", lit(Text, "127.0.0.1", 13)),
            (
                "[BODY].x == \"a \\\"b\\\" \\\\c\"",
                lit(Text, "a \"b\" \\c", 13),
            ),
            ("[BODY].x == \"\"", lit(Text, "", 13)),
            ("[BODY].x == \"200\"", lit(Text, "200", 13)),
            ("[BODY].x == pat(a*b?)", Right::Pat("a*b?".into())),
            ("[BODY].x == pat( \"a b*\" )", Right::Pat("a b*".into())),
            ("[BODY].x == pat(\"\")", Right::Pat(String::new())),
            (
                "[BODY].x == pat( *Example Domain* )",
                Right::Pat("*Example Domain*".into()),
            ),
            (
                "[BODY].x == pat(\"*(beta)*\")",
                Right::Pat("*(beta)*".into()),
            ),
            // Gatus reads a bare glob up to the last `)`, and unquoted values to the end.
            ("[BODY] == pat(*(beta)*)", Right::Pat("*(beta)*".into())),
            (
                "[BODY] == pat(*<div id=\"user\">john.doe</div>*)",
                Right::Pat("*<div id=\"user\">john.doe</div>*".into()),
            ),
            ("[BODY] == pat(a \"b\")  ", Right::Pat("a \"b\"".into())),
            ("[BODY] == not found", lit(Text, "not found", 11)),
            ("[BODY] == ok  ", lit(Text, "ok", 11)),
            (
                "[BODY].msg == Hello, world!",
                lit(Text, "Hello, world!", 15),
            ),
            ("[BODY] == {\"a\":1}", lit(Text, "{\"a\":1}", 11)),
            ("[BODY] == a<b", lit(Text, "a<b", 11)),
            ("[BODY] == foo)", lit(Text, "foo)", 11)),
            // Integers with a base prefix, as Go's ParseInt(s, 0, 64) reads them.
            ("[BODY].x == 0x1F", lit(Number(31.0), "0x1F", 13)),
            ("[BODY].x == 0o17", lit(Number(15.0), "0o17", 13)),
            ("[BODY].x == 0b10", lit(Number(2.0), "0b10", 13)),
            // Placeholders, len() and has() on the right.
            (
                "[BODY].a == [BODY].b",
                Right::Placeholder(Left::Value(Placeholder::Body(vec![key("b")]))),
            ),
            (
                "[STATUS] == [BODY].status",
                Right::Placeholder(Left::Value(Placeholder::Body(vec![key("status")]))),
            ),
            (
                "[RESPONSE_TIME] < [HEADERS].X-Budget",
                Right::Placeholder(Left::Value(Placeholder::Header("X-Budget".into()))),
            ),
            (
                "len([BODY].a) <= len( [BODY].b )",
                Right::Placeholder(Left::Len(Placeholder::Body(vec![key("b")]))),
            ),
            (
                "[BODY].flag == has([BODY].b)",
                Right::Placeholder(Left::Has(Placeholder::Body(vec![key("b")]))),
            ),
        ];
        for (src, want) in table {
            let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(expr.right, want, "{src}");
        }
        let expr = parse("[STATUS] == any(200, 201 ,204)").expect("any");
        let Right::Any(values) = expr.right else {
            panic!("not any: {:?}", expr.right)
        };
        let got: Vec<(&str, usize)> = values.iter().map(|v| (v.text.as_str(), v.column)).collect();
        assert_eq!(got, [("200", 17), ("201", 22), ("204", 27)]);
        let expr = parse("[BODY].s == any(not found, \"a, b\" , gone )").expect("any");
        let Right::Any(values) = expr.right else {
            panic!("not any: {:?}", expr.right)
        };
        let got: Vec<&str> = values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(got, ["not found", "a, b", "gone"]);
    }

    /// Every mix of the awkward pieces parses or fails with a column inside the text, and
    /// never panics (multi-byte white space, quotes, parentheses, operators).
    #[test]
    fn awkward_input_never_panics() {
        let pieces = [
            "[BODY]", "[STATUS]", "len(", "has(", "pat(", "any(", ")", "(", "\"", "\\", " ",
            "\u{3000}", "é", "==", "!=", "<", ">=", "=", ",", "*", "[", "]", ".", "0x", "1", "h",
            "\t", "日本",
        ];
        // A small deterministic generator: no dependency, same cases every run.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = 1 + next() % 10;
            let src: String = (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            if let Err(e) = parse(&src) {
                assert!(
                    e.column >= 1 && e.column <= src.chars().count() + 1,
                    "{src:?}: {e}"
                );
            }
        }
    }

    #[test]
    fn refuses_malformed_with_column() {
        let too_big = format!("[BODY].x == {}", "9".repeat(400));
        let table: Vec<(&str, usize, &str)> = vec![
            ("", 1, "empty condition"),
            ("   ", 1, "empty condition"),
            ("[STATUS]", 9, "missing operator"),
            ("[STATUS] = 200", 10, "use `==`"),
            ("[BODY] => 1", 8, "use `>=`"),
            ("[STATUS] ~ 200", 10, "expected an operator"),
            ("[STATUS] == ", 13, "missing value after `==`"),
            ("== 200", 1, "missing left-hand side"),
            ("200 == [STATUS]", 1, "expected a placeholder"),
            ("STATUS == 200", 1, "did you mean [STATUS]?"),
            (
                "[STATUS] == 200 300",
                13,
                "a number: compare it with a plain number, not `200 300`",
            ),
            (
                "[RESPONSE_TIME] < 300 ms",
                19,
                "needs a number or a duration on the right, found `300 ms`",
            ),
            ("[STATUS] == 200)", 13, "not `200)`"),
            (
                "[STATUS] === 200",
                12,
                "expected a value after `==`, found `=`",
            ),
            (
                "[BODY] == a == b",
                13,
                "a second operator `==` in the value",
            ),
            ("[BODY] == not found < 3", 21, "a second operator `<`"),
            (
                "[BODY] == é\u{3000}== b",
                13,
                "a second operator `==` in the value",
            ),
            ("[BODY] == ü ü  <= b", 16, "a second operator `<=`"),
            (
                "[STATUS] == [STAUTS]",
                13,
                "unknown placeholder `[STAUTS]`: use [STATUS], [RESPONSE_TIME], [BODY], [HEADERS].Name, [CERTIFICATE_EXPIRATION], [CONNECTED], [DNS_RCODE] or [IP] (quote the value to compare with text)",
            ),
            (
                "[BODY] == [1,2]",
                11,
                "(quote the value to compare with text)",
            ),
            (
                "[STATUS] == [CONNECTED]",
                13,
                "`[STATUS]` is a number and `[CONNECTED]` is true or false: they cannot be compared",
            ),
            (
                "[IP] == [RESPONSE_TIME]",
                9,
                "`[IP]` is text and `[RESPONSE_TIME]` is a duration",
            ),
            (
                "[BODY].a < [IP]",
                10,
                "`[IP]` is text: `<` needs numbers or durations on both sides",
            ),
            (
                "has([BODY].a) == len([BODY].b)",
                18,
                "is true or false and `len([BODY].b)` is a number",
            ),
            (
                "[BODY].x == len([STATUS])",
                17,
                "len() measures [BODY] or [HEADERS]",
            ),
            (
                "[BODY].x == [BODY].y z",
                22,
                "unexpected `z` after the condition",
            ),
            (
                "[BODY] == pat(a) x",
                18,
                "unexpected `x` after the condition",
            ),
            (
                "[STAUTS] == 200",
                1,
                "unknown placeholder `[STAUTS]`: use [STATUS], [RESPONSE_TIME]",
            ),
            ("[status] == 200", 1, "placeholders are upper case"),
            ("  [FOO] == 1", 3, "unknown placeholder `[FOO]`"),
            ("[] == 1", 1, "unknown placeholder `[]`"),
            ("[STATUS == 200", 1, "`[` is never closed"),
            ("[BODY].name == \"john", 16, "unterminated string"),
            ("[BODY].x == \"a\\nb\"", 15, "unknown escape `\\n`"),
            ("[BODY]..x == 1", 7, "empty path segment"),
            ("[BODY].a. == 1", 9, "empty path segment"),
            ("[BODY].ñ.. == 1", 9, "empty path segment"),
            ("[BODY].a[x] == 1", 10, "non-negative integer, found `x`"),
            ("[BODY].a[-1] == 1", 10, "non-negative integer, found `-1`"),
            ("[BODY].a[] == 1", 9, "empty array index"),
            ("[BODY].a[0 == 1", 9, "`[` is never closed"),
            ("[BODY].a[99999999999999999999999] == 1", 10, "too large"),
            ("[HEADERS] == x", 10, "[HEADERS] needs a header name"),
            ("[HEADERS]. == x", 11, "[HEADERS] needs a header name"),
            ("[STATUS].code == 200", 9, "[STATUS] has no fields"),
            ("[IP][0] == 1", 5, "[IP] has no fields"),
            ("len([BODY].items == 1", 18, "expected `)` to close len("),
            ("len([BODY].items", 4, "`(` is never closed"),
            ("len() == 1", 5, "len() needs a placeholder"),
            ("len(200) == 1", 5, "len() takes a placeholder"),
            (
                "len([STATUS]) == 3",
                5,
                "len() measures [BODY] or [HEADERS]",
            ),
            ("size([BODY]) == 1", 1, "unknown function `size`"),
            (
                "pat(x*) == [BODY]",
                1,
                "pat() belongs on the right-hand side",
            ),
            (
                "any(1) == [STATUS]",
                1,
                "any() belongs on the right-hand side",
            ),
            ("[BODY] == foo(1)", 11, "unknown function `foo`"),
            ("[STATUS] == any(200, 201", 16, "`(` is never closed"),
            ("[STATUS] == any()", 17, "any() needs at least one value"),
            ("[STATUS] == any(200,)", 21, "missing value in any()"),
            ("[STATUS] == any(200 201)", 17, "not `200 201`"),
            ("[STATUS] == any(200, pat(2*))", 22, "cannot be nested"),
            ("[STATUS] == any(200, [STATUS])", 22, "any() takes values"),
            ("[STATUS] == any(200, OK)", 22, "`[STATUS]` is a number"),
            ("[BODY] == pat()", 15, "pat() needs a pattern"),
            ("[BODY] == pat(\"a\" b)", 19, "pat() takes one pattern"),
            ("[BODY] == pat(a*", 14, "`(` is never closed"),
            (
                "[BODY].name < pat(a*)",
                15,
                "pat() works only with == and !=",
            ),
            (
                "[STATUS] > any(200, 300)",
                12,
                "any() works only with == and !=",
            ),
            ("[BODY].ok < true", 13, "`<` needs a number or a duration"),
            (
                "[BODY].status >= UP",
                18,
                "`>=` needs a number or a duration on the right, found `UP`",
            ),
            ("[BODY].n > \"5\"", 12, "needs a number or a duration"),
            (
                "[CONNECTED] > 1",
                13,
                "`[CONNECTED]` is true or false: compare it with == or !=",
            ),
            ("[CONNECTED] == yes", 16, "`[CONNECTED]` is true or false"),
            ("[CONNECTED] == pat(t*)", 16, "not pat()"),
            ("has([BODY].x) == 1", 18, "`has([BODY].x)` is true or false"),
            ("has([BODY].x) <= 1", 15, "compare it with == or !="),
            ("[DNS_RCODE] < 3", 13, "`[DNS_RCODE]` is text"),
            ("[STATUS] == true", 13, "`[STATUS]` is a number"),
            ("[STATUS] < 5s", 12, "`[STATUS]` is a number"),
            ("len([BODY]) == \"3\"", 16, "`len([BODY])` is a number"),
            ("[RESPONSE_TIME] < 10x", 19, "unknown unit `x`"),
            ("[RESPONSE_TIME] < 1.5s", 19, "whole numbers"),
            ("[RESPONSE_TIME] == UP", 20, "is a duration"),
            ("[CERTIFICATE_EXPIRATION] == pat(1*)", 29, "is a duration"),
            ("[BODY].x == 1e3", 13, "not a valid duration"),
            ("[BODY].x == 99999999999999999999999d", 13, "too large"),
            (too_big.as_str(), 13, "too large"),
        ];
        assert!(table.len() >= 25);
        for (src, column, fragment) in table {
            match parse(src) {
                Ok(expr) => panic!("{src:?} parsed: {expr:?}"),
                Err(e) => {
                    assert_eq!(e.column, column, "{src:?}: {e}");
                    assert!(e.message.contains(fragment), "{src:?}: {e}");
                }
            }
        }
    }
}
