//! Property-based fuzzing of the config file (YAML) and of API request bodies: refused with an
//! error, never a panic. Bounded here (`PROPTEST_CASES`, default 256); `scripts/fuzz` runs longer.

use std::path::Path;

use netmon_app::api::body::parse_json;
use netmon_core::channel::ChannelSpec;
use netmon_core::maintenance::MaintenanceSpec;
use netmon_core::target::TargetSpec;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../examples/netmon.yaml");

/// The example config with bytes changed, cut or inserted.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..8).prop_map(
        move |edits| {
            let mut bytes = base.as_bytes().to_vec();
            for (at, byte, how) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => {
                        bytes.remove(i);
                    }
                    2 => bytes.insert(i, byte),
                    // Duplicate a slice: repeated keys, deeper nesting.
                    _ => {
                        let end = (i + 40).min(bytes.len());
                        let copy = bytes[i..end].to_vec();
                        bytes.splice(i..i, copy);
                    }
                }
            }
            bytes
        },
    )
}

proptest! {
    #[test]
    fn config_files_load_or_are_refused(bytes in mutated(EXAMPLE)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = netmon_up::config::parse(&text, "fuzz.yaml", Path::new("/")) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn any_yaml_text_is_handled(text in any::<String>()) {
        let _ = netmon_up::config::parse(&text, "fuzz.yaml", Path::new("/"));
    }

    /// API bodies: the body parser with every spec type, on JSON-ish bytes.
    #[test]
    fn api_bodies_parse_or_are_refused(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "[{}\\[\\]\":,a-z0-9 ]{0,200}".prop_map(String::into_bytes),
        mutated(r#"{"id":"web","http":{"url":"https://example.com/","headers":{"A":"b"}},"conditions":["[STATUS] == 200"],"tags":["x"]}"#),
        mutated(r#"{"id":"hook","webhook":{"url":"https://h.example/x","secret":"s","headers":{"A":"b"}}}"#),
        mutated(r#"{"id":"m","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z","targets":["web"]}"#),
    ]) {
        let _ = parse_json::<TargetSpec>(&bytes);
        let _ = parse_json::<ChannelSpec>(&bytes);
        let _ = parse_json::<MaintenanceSpec>(&bytes);
        let _ = parse_json::<serde_json::Value>(&bytes);
    }
}
