//! PLACEHOLDER — the conditions language is being written; this stub only fixes the interface.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::result::{ConditionResult, Observation};

/// A parse error with the 1-based character column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ConditionError {
    pub column: usize,
    pub message: String,
}

#[derive(Clone)]
pub struct Condition {
    source: String,
}

impl Condition {
    pub fn parse(source: &str) -> Result<Self, ConditionError> {
        if source.trim().is_empty() {
            return Err(ConditionError {
                column: 1,
                message: "empty condition".into(),
            });
        }
        Ok(Self {
            source: source.to_owned(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn evaluate(&self, _obs: &Observation, _now: DateTime<Utc>) -> ConditionResult {
        ConditionResult {
            condition: self.source.clone(),
            passed: false,
            actual: None,
        }
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Condition::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("condition {s:?}: {e}")))
    }
}
