#!/usr/bin/env python3
"""Proves check_drift.py fails when things drift. Each case copies the inputs the drift check
reads (resources.rs, the resource script, the SAM template, the CDK template, functions/) into a
temporary tree, applies one mutation, runs the check and asserts it fails with the expected
finding. A baseline case asserts the unmutated copy passes, so a failure is the mutation's doing.

Usage: selftest_drift.py --repo DIR [--cdk-template FILE] [--show]
  --show   print each case's full drift-check output (for reviews and the closing note)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_drift  # noqa: E402

RESOURCES = "crates/netmon-aws/src/resources.rs"
SCRIPT = "localstack/init/ready.d/netmon-resources.sh"
TEMPLATE = "infra/template.yaml"


def copy_inputs(repo: Path, dst: Path, cdk_template: Path | None) -> Path | None:
    for rel in (RESOURCES, SCRIPT, TEMPLATE):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dst / rel)
    if (repo / "functions").is_dir():
        shutil.copytree(repo / "functions", dst / "functions",
                        ignore=shutil.ignore_patterns("target", "*.zip"))
    if cdk_template:
        out = dst / "cdk.template.json"
        shutil.copy2(cdk_template, out)
        return out
    return None


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"self-test setup: {old!r} not found in {path}")
    path.write_text(text.replace(old, new, count))


def rename_queue_in_sam(root: Path, cdk: Path | None) -> None:
    """One place only: the alerter-in queue's name in the SAM template."""
    edit(root / TEMPLATE, "QueueName: !Sub netmon-${Stage}-alerter-in\n", "QueueName: !Sub netmon-${Stage}-alerter-inbox\n")


def function_reads_new_env_var(root: Path, cdk: Path | None) -> None:
    """A new constant in resources.rs that the prober starts reading; neither SAM nor CDK sets it."""
    edit(root / RESOURCES, "/// Physical names are", '/// Per-probe deadline override.\npub const ENV_PROBE_DEADLINE: &str = "NETMON_PROBE_DEADLINE";\n\n/// Physical names are')
    fn = root / "functions/prober"
    if not (fn / "Cargo.toml").exists():  # the real prober has not landed: a minimal stand-in
        (fn / "src").mkdir(parents=True, exist_ok=True)
        (fn / "Cargo.toml").write_text('[package]\nname = "netmon-fn-prober"\nversion = "0.1.0"\nedition = "2024"\n')
        (fn / "src/main.rs").write_text(
            "use netmon_aws::resources;\n\nfn main() {\n"
            "    let _topic = std::env::var(resources::ENV_PROBE_RESULTS_TOPIC_ARN);\n"
            "    let _location = std::env::var(resources::ENV_LOCATION);\n}\n")
    (fn / "src/deadline.rs").write_text(
        "use netmon_aws::resources::ENV_PROBE_DEADLINE;\n\n"
        "pub fn deadline() -> Option<String> {\n    std::env::var(ENV_PROBE_DEADLINE).ok()\n}\n")


def filter_policy_in_cdk(root: Path, cdk: Path | None) -> None:
    """The CDK notifier subscription loses incident.reminder."""
    assert cdk is not None
    t = json.loads(cdk.read_text())
    for res in t["Resources"].values():
        fp = res.get("Properties", {}).get("FilterPolicy")
        if res["Type"] == "AWS::SNS::Subscription" and fp and "incident.reminder" in fp.get("type", []):
            fp["type"].remove("incident.reminder")
    cdk.write_text(json.dumps(t))


def visibility_in_script(root: Path, cdk: Path | None) -> None:
    """The resource script's timeout map says the notifier runs 120 s (visibility would be 720 s)."""
    edit(root / SCRIPT, "[notifier-in]=60", "[notifier-in]=120")



def batch_window_in_template(root: Path, cdk: Path | None) -> None:
    """The template lengthens the alerter's batching window; the local runner would not mirror it."""
    edit(root / TEMPLATE, "MaximumBatchingWindowInSeconds: 5\n", "MaximumBatchingWindowInSeconds: 9\n")


CASES: list[tuple[str, Callable[[Path, Path | None], None] | None, list[str], bool]] = [
    ("baseline copy passes", None, [], False),
    ("queue renamed in one place (SAM template)", rename_queue_in_sam,
     ["queue netmon-dev-alerter-in missing", "queue netmon-dev-alerter-inbox is not in resources.rs"], False),
    ("function reads a new env var", function_reads_new_env_var,
     ["prober reads NETMON_PROBE_DEADLINE (functions/prober/src/deadline.rs:4) but the function does not set it"], False),
    ("filter policy drifts in CDK only", filter_policy_in_cdk,
     ["[CDK synth] subscription netmon-dev-incidents -> netmon-dev-notifier-in FilterPolicy"], True),
    ("consumer timeout changes in the resource script", visibility_in_script,
     ["notifier (consumes netmon-dev-notifier-in) timeout 60 s, the resource script's function_timeout says 120 s"], False),
    ("event source batching window drifts from resources::EVENT_SOURCES", batch_window_in_template,
     ["alerter on netmon-dev-alerter-in: BatchSize/MaximumBatchingWindowInSeconds/MaximumConcurrency/Timeout (10, 9, 5, 30)"], False),
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
                cli = ["--repo", str(root)] + (["--cdk-template", str(cdk)] if cdk else [])
                rc = check_drift.main(cli)
            text = out.getvalue().replace(str(root), "<copy>")
        want_rc = 0 if mutate is None else 1
        missing = [e for e in expected if e not in text]
        ok = rc == want_rc and not missing
        passed += ok
        failed += not ok
        print(f"{'ok   ' if ok else 'FAIL '} {title}: drift check exit {rc} (expected {want_rc})")
        for e in missing:
            print(f"      expected finding not reported: {e}")
        if args.show or not ok:
            print("\n".join("      | " + line for line in text.rstrip().splitlines()))
    print(f"drift-selftest: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
