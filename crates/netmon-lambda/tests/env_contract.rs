//! Each function reads exactly the variables the resource contract gives it
//! (`netmon_aws::resources::FUNCTIONS`, rendered to `infra/contract.json`, against which the
//! drift check holds the SAM and CDK templates). What a function reads is recorded, not parsed:
//! its `*Config::from_env` and `sdk::for_lambda` (all that `functions/<name>/src/main.rs` reads)
//! run against an [`Env`] that logs every lookup.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};

use netmon_aws::resources::{
    ENV_LOCATION, ENV_PUBLIC_URL, ENV_SESSION_SECRET, FUNCTIONS, QUEUES, SETTINGS, SettingValue,
    TABLES, TOPICS, function,
};
use netmon_lambda::env::{Env, EnvError};
use netmon_lambda::functions::{alerter, api, notifier, prober, recorder, scheduler};
use netmon_lambda::sdk;

/// What a function's `main.rs` reads from its environment before serving.
type Reader = fn(&Env) -> Result<(), EnvError>;

const READERS: &[(&str, Reader)] = &[
    (function::SCHEDULER, |env| {
        scheduler::SchedulerConfig::from_env(env).map(drop)
    }),
    (function::PROBER, |env| {
        prober::ProberConfig::from_env(env).map(drop)
    }),
    (function::ALERTER, |env| {
        alerter::AlerterConfig::from_env(env).map(drop)
    }),
    (function::NOTIFIER, |env| {
        notifier::NotifierConfig::from_env(env).map(drop)
    }),
    (function::RECORDER, |env| {
        recorder::RecorderConfig::from_env(env).map(drop)
    }),
    (function::API, |env| api::ApiConfig::from_env(env).map(drop)),
];

/// A value of the kind the deployment gives `name`: a table name, topic ARN, queue URL or
/// setting. `None` for a variable the contract does not know.
fn deployed_value(name: &str) -> Option<String> {
    if let Some(t) = TABLES.iter().find(|t| t.env == name) {
        return Some(format!("netmon-test-{}", t.suffix));
    }
    if let Some(t) = TOPICS.iter().find(|t| t.env == name) {
        return Some(format!(
            "arn:aws:sns:eu-west-1:123456789012:netmon-test-{}",
            t.suffix
        ));
    }
    if let Some(q) = QUEUES.iter().find(|q| q.env == name) {
        return Some(format!(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/netmon-test-{}",
            q.suffix
        ));
    }
    SETTINGS
        .iter()
        .find(|s| s.env == name)
        .map(|s| match (s.value, name) {
            (SettingValue::Fixed(v), _) => v.to_owned(),
            (SettingValue::Parameter(_), ENV_LOCATION) => "eu-west-1".to_owned(),
            // The other parameters are flags.
            (SettingValue::Parameter(_), _) => "false".to_owned(),
            (SettingValue::OptionalParameter(_), ENV_PUBLIC_URL) => {
                "https://netmon.example.com/".to_owned()
            }
            (SettingValue::OptionalParameter(_), ENV_SESSION_SECRET) => "5e".repeat(32),
            (SettingValue::OptionalParameter(_), _) => "alerts@example.com".to_owned(),
        })
}

/// Lambda sets these itself (and reserves the `AWS_` prefix), so no template does.
fn provided_by_lambda(name: &str) -> bool {
    name.starts_with("AWS_")
}

struct Recorded {
    /// Variables looked up that Lambda does not provide.
    read: BTreeSet<String>,
    outcome: Result<(), EnvError>,
}

/// Runs `reader` as `main.rs` would on Lambda, with the environment the contract gives
/// `function` (plus what Lambda sets), recording every lookup.
fn record(function: &str, reader: Reader) -> Recorded {
    let given: Vec<&'static str> = FUNCTIONS
        .iter()
        .find(|f| f.name == function)
        .map(|f| f.env.to_vec())
        .unwrap_or_default();
    let looked_up = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = looked_up.clone();
    let env = Env::from_fn(move |name| {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.to_owned());
        match name {
            "AWS_REGION" => Some(OsString::from("eu-west-1")),
            _ if given.contains(&name) => deployed_value(name).map(OsString::from),
            _ => None,
        }
    });
    let outcome = reader(&env).and_then(|()| sdk::for_lambda(&env).map(drop));
    let read = looked_up
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|n| !provided_by_lambda(n))
        .cloned()
        .collect();
    Recorded { read, outcome }
}

/// Findings for one function: variables it reads that the contract does not give it, variables
/// the contract gives it that it never reads, and a config that fails on the deployed values.
fn drift(function: &str, reader: Reader) -> Vec<String> {
    let recorded = record(function, reader);
    let given: BTreeSet<String> = FUNCTIONS
        .iter()
        .find(|f| f.name == function)
        .map(|f| f.env.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    let mut findings = Vec::new();
    for name in recorded.read.difference(&given) {
        findings.push(format!(
            "{function} reads {name}, which the contract does not give it: add it to its `env` in \
             netmon_aws::resources::FUNCTIONS (a resource's `env` or a SETTINGS entry), regenerate \
             infra/contract.json (NETMON_WRITE_CONTRACT=1 cargo nextest run -p netmon-aws contract) \
             and set it in infra/template.yaml (scripts/check-infra checks the templates)"
        ));
    }
    for name in given.difference(&recorded.read) {
        findings.push(format!(
            "{function} never reads {name}, which the contract gives it: remove it from its `env` \
             in netmon_aws::resources::FUNCTIONS"
        ));
    }
    if let Err(e) = recorded.outcome {
        findings.push(format!(
            "{function} fails to start with the contract's environment: {e}"
        ));
    }
    findings
}

#[test]
fn every_function_in_the_contract_has_its_config_reader_here() {
    let here: BTreeSet<&str> = READERS.iter().map(|(name, _)| *name).collect();
    let contract: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    assert_eq!(
        here, contract,
        "READERS must list each function of resources::FUNCTIONS once"
    );
}

#[test]
fn each_function_reads_exactly_the_variables_the_contract_gives_it() {
    let findings: Vec<String> = READERS
        .iter()
        .flat_map(|(name, reader)| drift(name, *reader))
        .collect();
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

#[test]
fn the_recording_sees_every_lookup() {
    let (_, reader) = READERS
        .iter()
        .find(|(name, _)| *name == function::PROBER)
        .expect("the prober's reader");
    let prober = record(function::PROBER, *reader);
    assert_eq!(
        prober.read,
        [
            "NETMON_ALLOW_LINK_LOCAL",
            "NETMON_ALLOW_PRIVATE",
            "NETMON_LOCATION",
            "NETMON_PROBE_RESULTS_TOPIC_ARN"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert!(prober.outcome.is_ok());
}

/// The check can fail: a prober that starts reading a variable the template does not set, and
/// one that stops reading one it does, are both reported.
#[test]
fn a_new_or_dropped_variable_is_reported() {
    let reads_more: Reader = |env| {
        prober::ProberConfig::from_env(env)?;
        env.optional("NETMON_PROBE_DEADLINE").map(drop)
    };
    let findings = drift(function::PROBER, reads_more);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]
            .starts_with("prober reads NETMON_PROBE_DEADLINE, which the contract does not give it"),
        "{findings:?}"
    );

    let reads_less: Reader = |env| env.required("NETMON_PROBE_RESULTS_TOPIC_ARN").map(drop);
    let findings = drift(function::PROBER, reads_less);
    assert_eq!(findings.len(), 3, "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("prober never reads NETMON_LOCATION")),
        "{findings:?}"
    );

    // A required variable the contract does not give makes the config fail, and is named.
    let requires_more: Reader = |env| {
        alerter::AlerterConfig::from_env(env)?;
        env.required("NETMON_HISTORY_TABLE").map(drop)
    };
    let findings = drift(function::ALERTER, requires_more);
    assert!(
        findings[0].starts_with("alerter reads NETMON_HISTORY_TABLE"),
        "{findings:?}"
    );
    assert!(
        findings[1].contains("missing environment variable NETMON_HISTORY_TABLE"),
        "{findings:?}"
    );
}
