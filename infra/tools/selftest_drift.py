#!/usr/bin/env python3
"""Proves check_drift.py fails when things drift. Each case copies the inputs the drift check
reads (infra/contract.json, the SAM template, the synthesized CDK template, functions/*/Cargo.toml)
into a temporary tree, applies one mutation, runs the check and asserts it fails with the
expected finding. A baseline case asserts the unmutated copy passes, so each failure is the
mutation's doing.

(That a function's config reading a new variable fails a test is shown on the Rust side:
crates/netmon-lambda/tests/env_contract.rs; the "contract gives a function a new variable" case
here is the step after it.)

Usage: selftest_drift.py --repo DIR [--cdk-template FILE] [--show]
  --show   print each case's full drift-check output (for reviews and the closing note)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_drift  # noqa: E402

CONTRACT = "infra/contract.json"
TEMPLATE = "infra/template.yaml"


def copy_inputs(repo: Path, dst: Path, cdk_template: Path | None) -> Path | None:
    for rel in (CONTRACT, TEMPLATE):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dst / rel)
    for toml in (repo / "functions").glob("*/Cargo.toml"):
        (dst / toml.relative_to(repo)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(toml, dst / toml.relative_to(repo))
    if cdk_template:
        out = dst / "cdk.template.json"
        shutil.copy2(cdk_template, out)
        return out
    return None


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"self-test setup: {old!r} not found in {path}")
    path.write_text(text.replace(old, new, 1))


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def cdk_resources(t: dict, type_: str):
    return [r["Properties"] for r in t["Resources"].values() if r["Type"] == type_]


def rename_queue_in_sam(root: Path, cdk: Path | None) -> None:
    """One place only: the alerter-in queue's name in the SAM template."""
    edit(root / TEMPLATE, "QueueName: !Sub netmon-${Stage}-alerter-in\n", "QueueName: !Sub netmon-${Stage}-alerter-inbox\n")


def rename_queue_in_contract(root: Path, cdk: Path | None) -> None:
    """The contract renames notifier-in; neither template follows."""
    def change(c: dict) -> None:
        for q in c["queues"]:
            if q["suffix"] == "notifier-in":
                q["suffix"], q["dead_letter_queue"]["suffix"] = "notifications", "notifications-dlq"
        for x in c["subscriptions"] + c["event_sources"]:
            if x["queue"] == "notifier-in":
                x["queue"] = "notifications"
    edit_json(root / CONTRACT, change)


def contract_gives_prober_a_new_variable(root: Path, cdk: Path | None) -> None:
    """The prober reads a new setting (the Rust test made the contract list it); no template sets it."""
    def change(c: dict) -> None:
        next(f for f in c["functions"] if f["name"] == "prober")["environment"]["NETMON_PROBE_DEADLINE"] = {"value": "30"}
    edit_json(root / CONTRACT, change)


def env_var_missing_on_a_function(root: Path, cdk: Path | None) -> None:
    """SAM's alerter loses NETMON_INCIDENTS_TOPIC_ARN."""
    edit(root / TEMPLATE, "          NETMON_STATE_TABLE: !Ref StateTable\n          NETMON_INCIDENTS_TOPIC_ARN: !Ref IncidentsTopic\n",
         "          NETMON_STATE_TABLE: !Ref StateTable\n")


def env_var_names_the_wrong_resource(root: Path, cdk: Path | None) -> None:
    """SAM's recorder gets the state table's name as its history table."""
    edit(root / TEMPLATE, "          NETMON_HISTORY_TABLE: !Ref HistoryTable\n          NETMON_RECORDER_IN_QUEUE_URL",
         "          NETMON_HISTORY_TABLE: !Ref StateTable\n          NETMON_RECORDER_IN_QUEUE_URL")


def filter_policy_in_cdk(root: Path, cdk: Path | None) -> None:
    """The CDK notifier subscription loses incident.reminder."""
    assert cdk is not None

    def change(t: dict) -> None:
        for p in cdk_resources(t, "AWS::SNS::Subscription"):
            if "incident.reminder" in (p.get("FilterPolicy") or {}).get("type", []):
                p["FilterPolicy"]["type"].remove("incident.reminder")
    edit_json(cdk, change)


def raw_delivery_off_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's recorder subscription wraps bodies in SNS's notification JSON."""
    edit(root / TEMPLATE, "      Endpoint: !GetAtt RecorderQueue.Arn\n      RawMessageDelivery: true\n",
         "      Endpoint: !GetAtt RecorderQueue.Arn\n      RawMessageDelivery: false\n")


def batch_window_in_sam(root: Path, cdk: Path | None) -> None:
    """The template lengthens the alerter's batching window; the local runner would not mirror it."""
    edit(root / TEMPLATE, "MaximumBatchingWindowInSeconds: 5\n", "MaximumBatchingWindowInSeconds: 9\n")


def max_concurrency_in_cdk(root: Path, cdk: Path | None) -> None:
    """CDK lets the alerter's event source run 10 at once."""
    assert cdk is not None

    def change(t: dict) -> None:
        for p in cdk_resources(t, "AWS::Lambda::EventSourceMapping"):
            if p.get("MaximumBatchingWindowInSeconds") == 5:
                p["ScalingConfig"]["MaximumConcurrency"] = 10
    edit_json(cdk, change)


def drain_grant_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's recorder may receive from recorder-in but no longer delete."""
    edit(root / TEMPLATE, "              Action: [sqs:ReceiveMessage, sqs:DeleteMessage]\n              Resource: !GetAtt RecorderQueue.Arn",
         "              Action: [sqs:ReceiveMessage]\n              Resource: !GetAtt RecorderQueue.Arn")


def drain_event_source_in_sam(root: Path, cdk: Path | None) -> None:
    """An event source mapping on recorder-in comes back beside the schedule."""
    edit(root / TEMPLATE, "\n  HttpApi:\n", "\n  RecorderEventSource:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties:\n"
         "      FunctionName: !Ref RecorderFunction\n      EventSourceArn: !GetAtt RecorderQueue.Arn\n      BatchSize: 10\n\n  HttpApi:\n")


def drain_parameter_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's HistoryFlushMinutes defaults to 10 while the contract says 5."""
    edit(root / TEMPLATE, "  HistoryFlushMinutes:\n    Type: Number\n    Default: 5\n", "  HistoryFlushMinutes:\n    Type: Number\n    Default: 10\n")


def consumer_timeout_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's notifier runs 120 s, but its queue stays at 6 x 60 s."""
    edit(root / TEMPLATE, "      MemorySize: 128\n      Timeout: 60\n", "      MemorySize: 128\n      Timeout: 120\n")


def visibility_in_cdk(root: Path, cdk: Path | None) -> None:
    """CDK's probe-jobs queue gets a visibility timeout equal to the prober's timeout."""
    assert cdk is not None

    def change(t: dict) -> None:
        for p in cdk_resources(t, "AWS::SQS::Queue"):
            if p.get("QueueName") == "netmon-dev-probe-jobs":
                p["VisibilityTimeout"] = 90
    edit_json(cdk, change)


def dlq_retention_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's alerter DLQ keeps messages 4 days instead of 14."""
    edit(root / TEMPLATE, "      QueueName: !Sub netmon-${Stage}-alerter-in-dlq\n      MessageRetentionPeriod: 1209600\n",
         "      QueueName: !Sub netmon-${Stage}-alerter-in-dlq\n      MessageRetentionPeriod: 345600\n")


def max_receive_in_cdk(root: Path, cdk: Path | None) -> None:
    """CDK's recorder-in queue gives up after 2 receives."""
    assert cdk is not None

    def change(t: dict) -> None:
        for p in cdk_resources(t, "AWS::SQS::Queue"):
            if p.get("QueueName") == "netmon-dev-recorder-in":
                p["RedrivePolicy"]["maxReceiveCount"] = 2
    edit_json(cdk, change)


def ttl_attribute_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's history table expires items by `expires` instead of `ttl`."""
    edit(root / TEMPLATE, "      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}\n      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}\n      SSESpecification: {SSEEnabled: true}\n      DeletionProtectionEnabled: !If [IsProd, true, false]\n\n  # ---",
         "      TimeToLiveSpecification: {AttributeName: expires, Enabled: true}\n      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}\n      SSESpecification: {SSEEnabled: true}\n      DeletionProtectionEnabled: !If [IsProd, true, false]\n\n  # ---")


def memory_in_sam(root: Path, cdk: Path | None) -> None:
    """SAM's prober shrinks to 128 MB."""
    edit(root / TEMPLATE, "      CodeUri: ../functions/prober\n      MemorySize: 256\n", "      CodeUri: ../functions/prober\n      MemorySize: 128\n")


def function_package_not_in_contract(root: Path, cdk: Path | None) -> None:
    """A new functions/reporter package that the contract (so nothing) deploys."""
    (root / "functions/reporter").mkdir(parents=True)
    (root / "functions/reporter/Cargo.toml").write_text('[package]\nname = "netmon-fn-reporter"\nversion = "0.1.0"\n')


def schedule_in_cdk(root: Path, cdk: Path | None) -> None:
    """CDK ticks the scheduler every 5 minutes."""
    assert cdk is not None

    def change(t: dict) -> None:
        for p in cdk_resources(t, "AWS::Events::Rule"):
            p["ScheduleExpression"] = "rate(5 minutes)"
    edit_json(cdk, change)


Mutation = Callable[[Path, "Path | None"], None]
# (title, mutation, findings that must be reported, needs the CDK template)
CASES: list[tuple[str, Mutation | None, list[str], bool]] = [
    ("baseline copy passes", None, [], False),
    ("queue renamed in one place (SAM template)", rename_queue_in_sam,
     ["[SAM template] queue netmon-dev-alerter-in missing", "[SAM template] queue netmon-dev-alerter-inbox is not in the contract"], False),
    ("queue renamed in the contract only", rename_queue_in_contract,
     ["[SAM template] queue netmon-dev-notifications missing", "[CDK synth] queue netmon-dev-notifications missing"], True),
    ("contract gives the prober a new variable no template sets", contract_gives_prober_a_new_variable,
     ["[SAM template] prober reads NETMON_PROBE_DEADLINE", "[CDK synth] prober reads NETMON_PROBE_DEADLINE"], True),
    ("env var missing on a function (SAM)", env_var_missing_on_a_function,
     ["[SAM template] alerter reads NETMON_INCIDENTS_TOPIC_ARN (contract: {'topic_arn': 'incidents'}) but the function does not set it"], False),
    ("env var names the wrong resource (SAM)", env_var_names_the_wrong_resource,
     ["[SAM template] recorder sets NETMON_HISTORY_TABLE to ref:netmon-dev-state, contract says ref:netmon-dev-history"], False),
    ("filter policy drifts in CDK only", filter_policy_in_cdk,
     ["[CDK synth] subscription netmon-dev-incidents -> netmon-dev-notifier-in FilterPolicy"], True),
    ("raw message delivery off (SAM)", raw_delivery_off_in_sam,
     ["[SAM template] subscription netmon-dev-probe-results -> netmon-dev-recorder-in RawMessageDelivery False"], False),
    ("event source batching window drifts (SAM)", batch_window_in_sam,
     ["[SAM template] alerter on netmon-dev-alerter-in: event source window 9, contract says 5"], False),
    ("event source max concurrency drifts (CDK)", max_concurrency_in_cdk,
     ["[CDK synth] alerter on netmon-dev-alerter-in: event source max_concurrency 10, contract says 5"], True),
    ("drained queue loses its delete grant (SAM)", drain_grant_in_sam,
     ["[SAM template] recorder drains netmon-dev-recorder-in but is not granted sqs:DeleteMessage on it"], False),
    ("drained queue also gets an event source (SAM)", drain_event_source_in_sam,
     ["[SAM template] queue netmon-dev-recorder-in is drained by recorder on a schedule, but event sources feed ['recorder']"], False),
    ("drain interval parameter default drifts (SAM)", drain_parameter_in_sam,
     ["[SAM template] HistoryFlushMinutes default 10, contract says 5", "[SAM template] recorder schedules ['rate(10 minutes)'], contract says 'rate(5 minutes)'"], False),
    ("consumer timeout changes (SAM)", consumer_timeout_in_sam,
     ["[SAM template] notifier Timeout/MemorySize 120/128, contract says 60/128"], False),
    ("visibility timeout below 6x the consumer's timeout (CDK)", visibility_in_cdk,
     ["[CDK synth] queue netmon-dev-probe-jobs visibility 90, contract says 540"], True),
    ("DLQ retention drifts (SAM)", dlq_retention_in_sam,
     ["[SAM template] DLQ netmon-dev-alerter-in-dlq retention 345600, contract says 1209600"], False),
    ("maxReceiveCount drifts (CDK)", max_receive_in_cdk,
     ["[CDK synth] queue netmon-dev-recorder-in max_receive 2, contract says 5"], True),
    ("table TTL attribute drifts (SAM)", ttl_attribute_in_sam,
     ["[SAM template] table netmon-dev-history TTL attribute 'expires', contract says 'ttl'"], False),
    ("function memory drifts (SAM)", memory_in_sam,
     ["[SAM template] prober Timeout/MemorySize 90/128, contract says 90/256"], False),
    ("function package not in the contract", function_package_not_in_contract,
     ["[functions/] functions/reporter is not in the contract"], False),
    ("schedule drifts (CDK)", schedule_in_cdk,
     ["[CDK synth] scheduler schedules ['rate(5 minutes)'], contract says 'rate(1 minute)'"], True),
]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--cdk-template", type=Path)
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args(argv)
    passed = failed = skipped = 0
    for title, mutate, expected, needs_cdk in CASES:
        if needs_cdk and not args.cdk_template:
            skipped += 1
            print(f"skip  {title} (needs --cdk-template)")
            continue
        with tempfile.TemporaryDirectory(prefix="netmon-drift-") as tmp:
            root = Path(tmp)
            cdk = copy_inputs(args.repo.resolve(), root, args.cdk_template)
            if mutate:
                mutate(root, cdk)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = check_drift.main(["--repo", str(root)] + (["--cdk-template", str(cdk)] if cdk else []))
            text = out.getvalue().replace(str(root), "<copy>")
        want_rc = 0 if mutate is None else 1
        missing = [e for e in expected if e not in text]
        ok = rc == want_rc and not missing
        passed += ok
        failed += not ok
        caught = [line.removeprefix("DRIFT ") for line in text.splitlines() if line.startswith("DRIFT ")]
        print(f"{'ok   ' if ok else 'FAIL '} {title}: drift check exit {rc} (expected {want_rc})"
              + (f", {len(caught)} finding(s), first: {caught[0]}" if caught else ""))
        for e in missing:
            print(f"      expected finding not reported: {e}")
        if args.show or not ok:
            print("\n".join("      | " + line for line in text.rstrip().splitlines()))
    print(f"drift-selftest: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
