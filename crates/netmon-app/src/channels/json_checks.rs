//! Small readers for the constraint checks of rendered payloads (tests only): each provider's
//! `constraints` and the golden tests use them.

use serde_json::Value;

pub(super) fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}
