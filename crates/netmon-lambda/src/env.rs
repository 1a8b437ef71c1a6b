//! Typed configuration from the environment, read once at init so a misconfigured function fails
//! its cold start with a message naming the variable, instead of failing every event.
//!
//! Variable names come from the resource contract (`netmon_aws::resources`), which the
//! infrastructure templates are checked against. Lookups go through [`Env`], so tests pass a
//! map instead of mutating the process environment (`std::env::set_var` is unsafe in edition
//! 2024 and races with other tests).

use std::ffi::OsString;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error(
        "missing environment variable {name} (set it on the function; see infra/template.yaml)"
    )]
    Missing { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    NotUnicode { name: String },
    #[error(
        "environment variable {name} has invalid value {value:?}: expected true, false, 1 or 0"
    )]
    NotABool { name: String, value: String },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

type Lookup = Box<dyn Fn(&str) -> Option<OsString> + Send + Sync>;

/// Where variables are looked up: the process environment, or a map in tests.
pub struct Env {
    lookup: Lookup,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print values: some variables may hold secrets.
        f.write_str("Env { .. }")
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_fn(|name| std::env::var_os(name))
    }

    /// Any lookup function (tests, layered sources).
    pub fn from_fn(lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// A fixed set of variables.
    #[cfg(test)]
    pub(crate) fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_fn(move |name| map.get(name).map(OsString::from))
    }

    /// The value of `name`. Unset, empty and all-whitespace values count as missing: an empty
    /// `!Ref` in a template is a deployment bug, not a value.
    pub fn required(&self, name: &str) -> Result<String, EnvError> {
        self.optional(name)?.ok_or_else(|| EnvError::Missing {
            name: name.to_owned(),
        })
    }

    /// The value of `name`, or `None` when unset or blank. Surrounding whitespace is trimmed.
    pub fn optional(&self, name: &str) -> Result<Option<String>, EnvError> {
        let Some(raw) = (self.lookup)(name) else {
            return Ok(None);
        };
        let value = raw.into_string().map_err(|_| EnvError::NotUnicode {
            name: name.to_owned(),
        })?;
        let value = value.trim();
        Ok((!value.is_empty()).then(|| value.to_owned()))
    }

    /// A boolean: `true`/`false`/`1`/`0` (case-insensitive), `default` when unset or blank.
    /// Anything else is an error rather than a guess, since flags gate security checks.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, EnvError> {
        match self.optional(name)? {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(EnvError::NotABool {
                    name: name.to_owned(),
                    value: v,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_aws::resources;

    #[test]
    fn required_returns_the_value_or_names_the_variable() {
        let env = Env::from_pairs([(resources::ENV_STATE_TABLE, "p-state")]);
        assert_eq!(env.required(resources::ENV_STATE_TABLE).unwrap(), "p-state");
        let err = env.required(resources::ENV_HISTORY_TABLE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing environment variable NETMON_HISTORY_TABLE (set it on the function; see infra/template.yaml)"
        );
    }

    #[test]
    fn blank_values_count_as_missing_and_values_are_trimmed() {
        let env = Env::from_pairs([
            (resources::ENV_STATE_TABLE, "  "),
            (resources::ENV_LOCATION, " eu-west-1 "),
        ]);
        assert!(matches!(
            env.required(resources::ENV_STATE_TABLE),
            Err(EnvError::Missing { .. })
        ));
        assert_eq!(env.optional(resources::ENV_STATE_TABLE).unwrap(), None);
        assert_eq!(
            env.optional(resources::ENV_LOCATION).unwrap().as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn flags_accept_four_spellings_and_refuse_the_rest() {
        for (raw, want) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
        ] {
            let env = Env::from_pairs([(resources::ENV_ALLOW_PRIVATE, raw)]);
            assert_eq!(
                env.flag(resources::ENV_ALLOW_PRIVATE, !want).unwrap(),
                want,
                "{raw}"
            );
        }
        let env = Env::from_pairs([(resources::ENV_ALLOW_PRIVATE, "yes")]);
        let err = env.flag(resources::ENV_ALLOW_PRIVATE, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable NETMON_ALLOW_PRIVATE has invalid value \"yes\": expected true, false, 1 or 0"
        );
    }

    #[test]
    fn flags_default_when_unset_or_blank() {
        let env = Env::from_pairs([(resources::ENV_ALLOW_LINK_LOCAL, "")]);
        assert!(env.flag(resources::ENV_ALLOW_LINK_LOCAL, true).unwrap());
        assert!(!env.flag(resources::ENV_ALLOW_PRIVATE, false).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_values_are_errors_not_missing() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::from_fn(|_| Some(OsString::from_vec(vec![0xff, 0xfe])));
        assert_eq!(
            env.required(resources::ENV_STATE_TABLE).unwrap_err(),
            EnvError::NotUnicode {
                name: resources::ENV_STATE_TABLE.into()
            }
        );
    }

    #[test]
    fn debug_never_prints_values() {
        let env = Env::from_pairs([("NETMON_SECRET", "hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));
    }
}
