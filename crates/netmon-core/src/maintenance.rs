//! Maintenance windows: while one covers a target, its state is still tracked but no incident
//! opens and no reminder is sent (`Rules::suppress_new`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{TargetId, TenantId, WindowId};
use crate::target::TargetSpec;

/// Longest window: a year. Longer is a disabled target, not maintenance.
pub(crate) const MAX_SPAN: chrono::TimeDelta = chrono::TimeDelta::days(366);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MaintenanceSpecWire", into = "MaintenanceSpecWire")]
pub struct MaintenanceSpec {
    pub id: WindowId,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Targets covered by id. With `tags`, a target is covered if either matches; with neither,
    /// every target of the tenant is covered.
    pub targets: Vec<TargetId>,
    pub tags: Vec<String>,
}

impl MaintenanceSpec {
    /// `[starts_at, ends_at)`.
    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    pub fn covers(&self, target: &TargetSpec) -> bool {
        self.covers_tagged(&target.id, &target.tags)
    }

    fn covers_tagged(&self, id: &TargetId, tags: &[String]) -> bool {
        (self.targets.is_empty() && self.tags.is_empty())
            || self.targets.contains(id)
            || tags.iter().any(|t| self.tags.contains(t))
    }
}

/// Whether any of `windows` covers `target` at `at`.
pub fn in_maintenance(
    windows: &[MaintenanceWindow],
    target: &TargetSpec,
    at: DateTime<Utc>,
) -> bool {
    in_maintenance_tagged(windows, &target.id, &target.tags, at)
}

/// [`in_maintenance`] for a target known by its id and tags (what a job carries of it).
pub fn in_maintenance_tagged(
    windows: &[MaintenanceWindow],
    id: &TargetId,
    tags: &[String],
    at: DateTime<Utc>,
) -> bool {
    windows
        .iter()
        .any(|w| w.spec.is_active(at) && w.spec.covers_tagged(id, tags))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub tenant: TenantId,
    pub spec: MaintenanceSpec,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceSpecWire {
    pub id: WindowId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetId>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::target::de_tags"
    )]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MaintenanceError {
    #[error("window {0:?}: ends_at must be after starts_at")]
    EndsBeforeStart(String),
    #[error("window {0:?}: a window may last at most 366 days")]
    TooLong(String),
    #[error("window {0:?}: name must be 1 to 200 characters and not blank")]
    BadName(String),
}

impl TryFrom<MaintenanceSpecWire> for MaintenanceSpec {
    type Error = MaintenanceError;
    fn try_from(w: MaintenanceSpecWire) -> Result<Self, MaintenanceError> {
        let id = w.id.to_string();
        if w.ends_at <= w.starts_at {
            return Err(MaintenanceError::EndsBeforeStart(id));
        }
        if w.ends_at - w.starts_at > MAX_SPAN {
            return Err(MaintenanceError::TooLong(id));
        }
        let name = w.name.unwrap_or_else(|| id.clone());
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(MaintenanceError::BadName(id));
        }
        Ok(Self {
            id: w.id,
            name,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            targets: w.targets,
            tags: w.tags,
        })
    }
}

impl From<MaintenanceSpec> for MaintenanceSpecWire {
    fn from(s: MaintenanceSpec) -> Self {
        Self {
            id: s.id,
            name: Some(s.name),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            targets: s.targets,
            tags: s.tags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<MaintenanceSpec, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn target(id: &str, tags: &[&str]) -> TargetSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "tcp": {"host": "x", "port": 1}, "tags": tags,
        }))
        .unwrap()
    }

    #[test]
    fn validates_and_matches() {
        let all = spec(serde_json::json!({
            "id": "upgrade", "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-01T11:00:00+00:00",
        }))
        .unwrap();
        assert_eq!(all.name, "upgrade");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(!all.is_active(at("2026-01-01T09:59:59Z")));
        assert!(all.is_active(at("2026-01-01T10:00:00Z")));
        assert!(!all.is_active(at("2026-01-01T11:00:00Z")));
        assert!(all.covers(&target("db", &[])));

        let some = spec(serde_json::json!({
            "id": "db-work", "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-02T10:00:00Z",
            "targets": ["db"], "tags": ["storage"],
        }))
        .unwrap();
        assert!(some.covers(&target("db", &[])));
        assert!(some.covers(&target("nfs", &["storage"])));
        assert!(!some.covers(&target("web", &["prod"])));

        for (json, want) in [
            (
                serde_json::json!({"id": "x", "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-01T10:00:00Z"}),
                "after starts_at",
            ),
            (
                serde_json::json!({"id": "x", "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2028-01-01T10:00:00Z"}),
                "366 days",
            ),
            (
                serde_json::json!({"id": "x", "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-02T10:00:00Z", "bogus": 1}),
                "unknown field",
            ),
            (
                serde_json::json!({"id": "x", "starts_at": "yesterday", "ends_at": "2026-01-02T10:00:00Z"}),
                "input contains invalid characters",
            ),
            (
                serde_json::json!({"id": "x", "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-02T10:00:00Z", "tags": ["a b"]}),
                "tag",
            ),
        ] {
            let err = spec(json.clone()).expect_err(&json.to_string());
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
