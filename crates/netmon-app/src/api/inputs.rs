//! Checks on what a key writes beyond what the wire types refuse: text that ends up in log lines,
//! notifications and pages, and secrets a user chooses. Done here, on the way in, rather than in
//! the types' decoding, so records stored before these rules still load.

use netmon_core::ids::is_printable_text;
use netmon_core::target::{CheckSpec, TargetSpec, check_heartbeat_token};

use super::problem::Problem;

/// A display name: no control characters or bidirectional overrides.
pub(crate) fn name(field: &str, value: &str) -> Result<(), Problem> {
    if is_printable_text(value) {
        Ok(())
    } else {
        Err(Problem::invalid_field(
            field,
            "must not contain control characters (line breaks, ESC, NUL) or direction overrides",
        ))
    }
}

pub(crate) fn target(spec: &TargetSpec) -> Result<(), Problem> {
    name("name", &spec.name)?;
    if let CheckSpec::Heartbeat(hb) = &spec.check
        && let Some(token) = &hb.token
    {
        check_heartbeat_token(token)
            .map_err(|why| Problem::invalid_field("heartbeat.token", why))?;
    }
    Ok(())
}
