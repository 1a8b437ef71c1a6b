//! CloudWatch metrics as embedded-metric-format log lines: CloudWatch Logs turns each line into
//! a datapoint, with no `PutMetricData` call or permission. The alarms on these metrics are
//! in `infra/template.yaml` and the CDK stack (a test below keeps the names in step).

use chrono::{DateTime, Utc};
use serde_json::json;

/// The namespace of netmon's own metrics.
pub const NAMESPACE: &str = "netmon";
/// Seconds the oldest unpublished incident event has waited in the outbox after the
/// scheduler's sweep (0 when none waits).
pub const OUTBOX_OLDEST_AGE: &str = "OutboxOldestAgeSeconds";

/// One datapoint of `metric`, dimensioned by the function's name.
pub(crate) fn line(function: &str, metric: &str, seconds: u64, at: DateTime<Utc>) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": metric, "Unit": "Seconds"}],
            }],
        },
        "FunctionName": function,
        metric: seconds,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datapoint_is_an_embedded_metric_format_line() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let line = line("netmon-prod-scheduler", OUTBOX_OLDEST_AGE, 42, at);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Metrics"][0]["Name"], OUTBOX_OLDEST_AGE);
        // Every dimension and metric named in the directive is a top-level member.
        assert_eq!(v["FunctionName"], "netmon-prod-scheduler");
        assert_eq!(v[OUTBOX_OLDEST_AGE], 42);
    }

    #[test]
    fn both_deployments_alarm_on_the_metric_this_module_writes() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/");
        let sam = std::fs::read_to_string(format!("{root}template.yaml")).unwrap();
        let cdk = std::fs::read_to_string(format!("{root}cdk/lib/netmon-stack.ts")).unwrap();
        assert!(sam.contains(&format!("MetricName: {OUTBOX_OLDEST_AGE}")));
        assert!(sam.contains(&format!("Namespace: {NAMESPACE}\n")));
        assert!(cdk.contains(&format!("metricName: '{OUTBOX_OLDEST_AGE}'")));
        assert!(cdk.contains(&format!("namespace: '{NAMESPACE}'")));
    }
}
