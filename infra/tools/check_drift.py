#!/usr/bin/env python3
"""Drift check: netmon's deployments against its resource contract. Reads data only:

  * infra/contract.json     the contract, generated from crates/netmon-aws/src/resources.rs (a
                            Rust test fails while it is stale; another checks the variables each
                            function's config reads against it)
  * infra/template.yaml     the hand-written SAM template, translated offline with aws-sam-translator
  * --cdk-template FILE     the CDK app's synthesized template (the app builds from the contract)
  * functions/*/Cargo.toml  the function packages that exist

Each template must deploy what the contract declares (tables, topics, queues, DLQs, redrive,
visibility, retention, subscriptions and filter policies, event sources, queues a scheduled
function drains itself, functions with their limits, variables and schedules) plus the hygiene the contract implies (encryption, alarms on
every queue and function, no `*` grants); SAM and CDK must also agree with each other on what
the contract does not say (permissions, alarms, API throttling).

Usage: check_drift.py --repo DIR [--template FILE] [--cdk-template FILE] [--stage dev]
Exit status 0: no drift. 1: drift (every finding is printed). 2: unreadable input.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

CONTRACT_VERSION = 1
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "netmon-stack", "AWS::NoValue": None}


def load_contract(path: Path) -> dict:
    try:
        c = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"check_drift: cannot read the contract {path}: {e}")
    if c.get("version") != CONTRACT_VERSION:
        raise SystemExit(f"check_drift: {path} is contract version {c.get('version')!r}, this check reads {CONTRACT_VERSION}")
    return c


# ------------------------------------------------------------------------------------------------
# CloudFormation evaluation: just enough intrinsics for names and references. A resource
# reference becomes «ref:Id» or «Id.Attr»; parameters take their defaults.

class Cfn:
    def __init__(self, template: dict, params: dict[str, str]):
        self.t = template
        self.res: dict[str, dict] = template.get("Resources", {})
        self.params = {n: params.get(n, str(p["Default"])) for n, p in template.get("Parameters", {}).items()
                       if n in params or "Default" in p}
        self.conds: dict[str, bool] = {}

    def cond(self, name: str) -> bool:
        if name not in self.conds:
            self.conds[name] = bool(self._cond(self.t["Conditions"][name]))
        return self.conds[name]

    def _cond(self, e: Any) -> Any:
        if isinstance(e, dict) and len(e) == 1:
            (k, v), = e.items()
            ops = {"Fn::Equals": lambda: self.ev(v[0]) == self.ev(v[1]), "Fn::Not": lambda: not self._cond(v[0]),
                   "Fn::And": lambda: all(map(self._cond, v)), "Fn::Or": lambda: any(map(self._cond, v)),
                   "Condition": lambda: self.cond(v)}
            if k in ops:
                return ops[k]()
        return self.ev(e)

    def ev(self, e: Any) -> Any:
        if isinstance(e, list):
            return [self.ev(x) for x in e]
        if not isinstance(e, dict):
            return e
        if len(e) == 1:
            (k, v), = e.items()
            if k == "Ref":
                return self.params[v] if v in self.params else PSEUDO[v] if v in PSEUDO else f"«ref:{v}»"
            if k == "Fn::GetAtt":
                v = v.split(".", 1) if isinstance(v, str) else v
                return f"«{v[0]}.{self.ev(v[1])}»"
            if k == "Fn::Sub":
                s, extra = (v, {}) if isinstance(v, str) else (v[0], {n: self.ev(x) for n, x in v[1].items()})

                def sub(m: re.Match) -> str:
                    n = m.group(1)
                    if n in extra:
                        return str(extra[n])
                    return str(self.ev({"Fn::GetAtt": n.split(".", 1)} if "." in n else {"Ref": n}))
                return re.sub(r"\$\{([^}!]+)\}", sub, s)
            if k == "Fn::Join":
                return str(v[0]).join(str(self.ev(x)) for x in v[1])
            if k == "Fn::If":
                return self.ev(v[1] if self.cond(v[0]) else v[2])
            if k == "Fn::Select":
                return self.ev(v[1])[int(self.ev(v[0]))]
        return {k: self.ev(x) for k, x in e.items()}

    def of_type(self, type_: str):
        for lid, r in self.res.items():
            if r.get("Type") == type_ and ("Condition" not in r or self.cond(r["Condition"])):
                yield lid, self.ev(r.get("Properties", {}))


def as_list(x: Any) -> list:
    return x if isinstance(x, list) else [] if x is None else [x]


def truthy(x: Any) -> bool:
    return x in (True, "true", "True")


# ------------------------------------------------------------------------------------------------
# A deployment-neutral model of one template: physical names instead of logical ids.

def build_model(label: str, cfn: Cfn, prefix: str) -> dict:
    names: dict[str, str] = {}
    for type_, prop in (("AWS::SQS::Queue", "QueueName"), ("AWS::SNS::Topic", "TopicName"),
                        ("AWS::DynamoDB::Table", "TableName"), ("AWS::Lambda::Function", "FunctionName")):
        for lid, p in cfn.of_type(type_):
            names[lid] = p.get(prop, f"?{lid}")

    def label_of(token: Any) -> str:
        """«ref:Id» -> ref:<name>, «Id.Attr» -> <name>.Attr, anything else as is."""
        s = str(token)
        m = re.fullmatch(r"«ref:([A-Za-z0-9]+)»", s)
        if m:
            return f"ref:{names.get(m.group(1), m.group(1))}"
        return re.sub(r"«([A-Za-z0-9]+)\.([A-Za-z.]+)»", lambda m: f"{names.get(m.group(1), m.group(1))}.{m.group(2)}", s)

    def name_of(token: Any) -> str:
        return re.sub(r"^ref:|\.Arn$", "", label_of(token))

    short = lambda fn: fn[len(prefix) + 1:] if fn.startswith(prefix + "-") else fn  # noqa: E731
    m: dict[str, Any] = {"label": label, "prefix": prefix, "names": names, "queues": {}, "tables": {}, "functions": {},
                         "subscriptions": [], "senders": {}, "schedules": [], "alarms": [], "http_api": {},
                         "topics": sorted(p.get("TopicName", lid) for lid, p in cfn.of_type("AWS::SNS::Topic"))}

    for lid, p in cfn.of_type("AWS::SQS::Queue"):
        rp = p.get("RedrivePolicy")
        rp = json.loads(rp) if isinstance(rp, str) else rp
        m["queues"][names[lid]] = {
            "visibility": int(p.get("VisibilityTimeout", 30)), "retention": int(p.get("MessageRetentionPeriod", 345600)),
            "dlq": name_of(rp["deadLetterTargetArn"]) if rp else None,
            "max_receive": int(rp["maxReceiveCount"]) if rp else None,
            "sse": bool(p.get("SqsManagedSseEnabled") or p.get("KmsMasterKeyId"))}

    for lid, p in cfn.of_type("AWS::DynamoDB::Table"):
        keys = lambda ks: [(k["AttributeName"], k["KeyType"]) for k in ks]  # noqa: E731
        m["tables"][names[lid]] = {
            "attrs": {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])},
            "keys": keys(p.get("KeySchema", [])),
            "indexes": {g["IndexName"]: {"keys": keys(g["KeySchema"]), "projection": g.get("Projection", {}).get("ProjectionType")}
                        for g in p.get("GlobalSecondaryIndexes") or []},
            "ttl": (p.get("TimeToLiveSpecification") or {}).get("AttributeName")
            if truthy((p.get("TimeToLiveSpecification") or {}).get("Enabled")) else None,
            "billing": p.get("BillingMode", "PROVISIONED"),
            "pitr": truthy((p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")),
            "sse": truthy((p.get("SSESpecification") or {}).get("SSEEnabled"))}

    for lid, p in cfn.of_type("AWS::SNS::Subscription"):
        if p.get("Protocol") == "sqs":
            fp = p.get("FilterPolicy")
            m["subscriptions"].append({
                "topic": name_of(p.get("TopicArn")), "queue": name_of(p.get("Endpoint")),
                "raw": truthy(p.get("RawMessageDelivery")), "scope": p.get("FilterPolicyScope", "MessageAttributes"),
                "filter": json.loads(fp) if isinstance(fp, str) else fp})

    for lid, p in cfn.of_type("AWS::SQS::QueuePolicy"):
        for st in p.get("PolicyDocument", {}).get("Statement", []):
            if (st.get("Effect") == "Allow" and (st.get("Principal") or {}).get("Service") == "sns.amazonaws.com"
                    and "sqs:SendMessage" in as_list(st.get("Action"))):
                source = ((st.get("Condition") or {}).get("ArnEquals") or {}).get("aws:SourceArn")
                for r in as_list(st.get("Resource")):
                    m["senders"].setdefault(name_of(r), set()).add(name_of(source) if source else "*ANY*")

    statements: dict[str, list] = {}
    roles = dict(cfn.of_type("AWS::IAM::Role"))
    for lid, p in roles.items():
        statements[lid] = [s for pol in p.get("Policies") or [] for s in pol.get("PolicyDocument", {}).get("Statement", [])]
    for lid, p in cfn.of_type("AWS::IAM::Policy"):
        for r in p.get("Roles", []):
            rid = re.sub(r"^ref:", "", label_of(r))
            statements.setdefault(rid, []).extend(p.get("PolicyDocument", {}).get("Statement", []))

    by_lid: dict[str, str] = {}
    for lid, p in cfn.of_type("AWS::Lambda::Function"):
        fn = by_lid[lid] = short(names[lid])
        role = re.sub(r"^(ref:)?|\.Arn$", "", label_of(p.get("Role")))
        grants = sorted({(a, label_of(r)) for st in statements.get(role, []) if isinstance(st, dict) and st.get("Effect") == "Allow"
                         for a in as_list(st.get("Action")) for r in as_list(st.get("Resource"))})
        m["functions"][fn] = {
            "logical": lid, "runtime": p.get("Runtime"), "handler": p.get("Handler"),
            "arch": (p.get("Architectures") or ["x86_64"])[0], "memory": int(p.get("MemorySize", 128)),
            "timeout": int(p.get("Timeout", 3)), "grants": grants, "esm": [],
            "env": {k: label_of(v) for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()},
            "log_group": bool((p.get("LoggingConfig") or {}).get("LogGroup")),
            "metadata": cfn.res[lid].get("Metadata", {})}

    fn_of = lambda token: by_lid.get(re.sub(r"^ref:|\.Arn$", "", str(token).strip("«»")), f"<unresolved {token}>")  # noqa: E731
    for lid, p in cfn.of_type("AWS::Lambda::EventSourceMapping"):
        esm = {"queue": name_of(p.get("EventSourceArn")), "batch": int(p.get("BatchSize", 10)),
               "window": int(p.get("MaximumBatchingWindowInSeconds", 0)),
               "response_types": sorted(p.get("FunctionResponseTypes") or []),
               "max_concurrency": (p.get("ScalingConfig") or {}).get("MaximumConcurrency"),
               "enabled": truthy(p.get("Enabled", True))}
        m["functions"].get(fn_of(p.get("FunctionName")), {"esm": []})["esm"].append(esm)
    for lid, p in cfn.of_type("AWS::Events::Rule"):
        if "ScheduleExpression" in p:
            m["schedules"].append({"expr": p["ScheduleExpression"], "enabled": p.get("State", "ENABLED") == "ENABLED",
                                   "targets": sorted(fn_of(t.get("Arn")) for t in p.get("Targets", []))})

    for lid, p in cfn.of_type("AWS::CloudWatch::Alarm"):
        dims = {d["Name"]: d["Value"] for d in p.get("Dimensions") or []}
        on = dims.get("FunctionName") or dims.get("QueueName")
        on = None if on is None else name_of(on).removesuffix(".QueueName")
        if "FunctionName" in dims and on:
            on = short(on)
        m["alarms"].append({"metric": f'{p.get("Namespace")}/{p.get("MetricName")}', "on": on,
                            "op": p.get("ComparisonOperator"), "threshold": float(p.get("Threshold", 0)),
                            "missing": p.get("TreatMissingData", "missing"), "periods": int(p.get("EvaluationPeriods", 1)),
                            "period": int(p.get("Period", 60)), "actions": len(p.get("AlarmActions") or [])})
    for lid, p in cfn.of_type("AWS::ApiGatewayV2::Stage"):
        d = p.get("DefaultRouteSettings") or {}
        num = lambda x: float(x) if x is not None else None  # noqa: E731 (parameters are strings)
        m["http_api"] = {"burst": num(d.get("ThrottlingBurstLimit")), "rate": num(d.get("ThrottlingRateLimit")),
                         "access_logs": bool(p.get("AccessLogSettings"))}
    return m


# ------------------------------------------------------------------------------------------------
# The checks

class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def fail(self, where: str, msg: str) -> None:
        self.failures.append(f"[{where}] {msg}")


def expected_env(source: dict, n) -> str | None:
    """The label a variable's value must have, or None for a deployment parameter (any value)."""
    if "table_name" in source:
        return f"ref:{n(source['table_name'])}"
    if "topic_arn" in source:
        return f"ref:{n(source['topic_arn'])}"
    if "queue_url" in source:
        return f"ref:{n(source['queue_url'])}"
    if "value" in source:
        return source["value"]
    return None


def check_model(m: dict, c: dict, r: Report) -> None:
    w = m["label"]
    n = lambda suffix: f"{m['prefix']}-{suffix}"  # noqa: E731

    for t in c["tables"]:
        name, got = n(t["suffix"]), m["tables"].get(n(t["suffix"]))
        if not got:
            r.fail(w, f"table {name} missing (tables: {sorted(m['tables'])})")
            continue
        want_keys = [(t["partition_key"]["name"], "HASH"), (t["sort_key"]["name"], "RANGE")]
        if got["keys"] != want_keys:
            r.fail(w, f"table {name} keys {got['keys']}, contract says {want_keys}")
        keys = [t["partition_key"], t["sort_key"]] + [k for i in t["indexes"] for k in (i["partition_key"], i["sort_key"])]
        for k in keys:
            if got["attrs"].get(k["name"]) != k["type"]:
                r.fail(w, f"table {name} attribute {k['name']} is {got['attrs'].get(k['name'])}, contract says {k['type']}")
        if got["ttl"] != t["ttl_attribute"]:
            r.fail(w, f"table {name} TTL attribute {got['ttl']!r}, contract says {t['ttl_attribute']!r} (enabled)")
        if got["billing"] != t["billing_mode"]:
            r.fail(w, f"table {name} billing {got['billing']}, contract says {t['billing_mode']}")
        want_idx = {i["name"]: {"keys": [(i["partition_key"]["name"], "HASH"), (i["sort_key"]["name"], "RANGE")],
                                "projection": i["projection"]} for i in t["indexes"]}
        if got["indexes"] != want_idx:
            r.fail(w, f"table {name} indexes {got['indexes']}, contract says {want_idx}")
        if not got["pitr"] or not got["sse"]:
            r.fail(w, f"table {name} lacks point-in-time recovery or SSE")
    for extra in sorted(set(m["tables"]) - {n(t["suffix"]) for t in c["tables"]}):
        r.fail(w, f"table {extra} is not in the contract")

    for t in c["topics"]:
        if n(t["suffix"]) not in m["topics"]:
            r.fail(w, f"topic {n(t['suffix'])} missing (topics: {m['topics']})")

    for q in c["queues"]:
        d = q["dead_letter_queue"]
        qn, dn = n(q["suffix"]), n(d["suffix"])
        got = m["queues"].get(qn)
        if not got:
            r.fail(w, f"queue {qn} missing (queues: {sorted(m['queues'])})")
            continue
        want = {"visibility": q["visibility_timeout_secs"], "retention": q["retention_secs"], "dlq": dn,
                "max_receive": d["max_receive_count"]}
        for k, v in want.items():
            if got[k] != v:
                r.fail(w, f"queue {qn} {k} {got[k]}, contract says {v}")
        dlq = m["queues"].get(dn)
        if not dlq:
            r.fail(w, f"DLQ {dn} missing")
        elif dlq["retention"] != d["retention_secs"]:
            r.fail(w, f"DLQ {dn} retention {dlq['retention']}, contract says {d['retention_secs']}")
        if not all(m["queues"].get(x, {"sse": True})["sse"] for x in (qn, dn)):
            r.fail(w, f"queue {qn} or its DLQ is not encrypted")
        consumers = sorted(f for f, spec in m["functions"].items() for e in spec["esm"] if e["queue"] == qn)
        drained = [d for d in c.get("drains", []) if d["queue"] == q["suffix"]]
        if drained:
            # No event source: its function receives and deletes on its own schedule.
            if consumers:
                r.fail(w, f"queue {qn} is drained by {drained[0]['function']} on a schedule, but event sources feed {consumers}")
            grants = m["functions"].get(drained[0]["function"], {"grants": []})["grants"]
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
                if (action, f"{qn}.Arn") not in grants:
                    r.fail(w, f"{drained[0]['function']} drains {qn} but is not granted {action} on it")
        elif consumers != [q["consumer"]]:
            r.fail(w, f"queue {qn} is consumed by {consumers}, contract says [{q['consumer']!r}]")
    known = {n(q["suffix"]) for q in c["queues"]} | {n(q["dead_letter_queue"]["suffix"]) for q in c["queues"]}
    for extra in sorted(set(m["queues"]) - known):
        r.fail(w, f"queue {extra} is not in the contract")

    want_subs = {(n(s["topic"]), n(s["queue"])): s for s in c["subscriptions"]}
    for (tn, qn), s in want_subs.items():
        found = [x for x in m["subscriptions"] if (x["topic"], x["queue"]) == (tn, qn)]
        if len(found) != 1:
            r.fail(w, f"subscription {tn} -> {qn}: found {len(found)}, contract says 1")
            continue
        got, norm = found[0], lambda f: {k: sorted(v) for k, v in (f or {}).items()}  # noqa: E731
        if norm(got["filter"]) != norm(s["filter_policy"]):
            r.fail(w, f"subscription {tn} -> {qn} FilterPolicy {got['filter']}, contract says {s['filter_policy']}")
        if got["raw"] != s["raw_message_delivery"]:
            r.fail(w, f"subscription {tn} -> {qn} RawMessageDelivery {got['raw']}, contract says {s['raw_message_delivery']}")
        if got["scope"] != s["filter_policy_scope"]:
            r.fail(w, f"subscription {tn} -> {qn} FilterPolicyScope {got['scope']}, contract says {s['filter_policy_scope']}")
        if tn not in m["senders"].get(qn, set()):
            r.fail(w, f"no queue policy lets topic {tn} send to {qn}")
    for x in m["subscriptions"]:
        if (x["topic"], x["queue"]) not in want_subs:
            r.fail(w, f"subscription {x['topic']} -> {x['queue']} is not in the contract")

    want_fns = {f["name"]: f for f in c["functions"]}
    for name in sorted(set(m["functions"]) - set(want_fns)):
        r.fail(w, f"function {n(name)} is deployed but not in the contract")
    for name, f in want_fns.items():
        got = m["functions"].get(name)
        if not got:
            r.fail(w, f"function {n(name)} missing (functions: {sorted(m['functions'])})")
            continue
        if (got["timeout"], got["memory"]) != (f["timeout_secs"], f["memory_mb"]):
            r.fail(w, f"{name} Timeout/MemorySize {got['timeout']}/{got['memory']}, contract says {f['timeout_secs']}/{f['memory_mb']}")
        for var, source in sorted(f["environment"].items()):
            want = expected_env(source, n)
            if var not in got["env"]:
                r.fail(w, f"{name} reads {var} (contract: {source}) but the function does not set it")
            elif want is not None and got["env"][var] != want:
                r.fail(w, f"{name} sets {var} to {got['env'][var]}, contract says {want} ({source})")
            elif want is None and not source.get("optional") and not str(got["env"][var]).strip():
                r.fail(w, f"{name} sets {var} to an empty value")
        for var in sorted(set(got["env"]) - set(f["environment"])):
            r.fail(w, f"{name} sets {var}, which it does not read (not in the contract)")
        scheds = sorted(s["expr"] for s in m["schedules"] if s["enabled"] and name in s["targets"])
        if scheds != ([f["schedule"]] if f["schedule"] else []):
            r.fail(w, f"{name} schedules {scheds}, contract says {f['schedule']!r}")
        if got["runtime"] != "provided.al2023" or got["handler"] != "bootstrap":
            r.fail(w, f"{name}: runtime {got['runtime']} handler {got['handler']}, expected provided.al2023/bootstrap")
        if not got["log_group"]:
            r.fail(w, f"{name}: no LoggingConfig.LogGroup (retention would not apply)")
        if any(g[1] == "*" for g in got["grants"]):
            r.fail(w, f"{name}: a policy statement grants on Resource '*'")
        if not any(a["metric"] == "AWS/Lambda/Errors" and a["on"] == name for a in m["alarms"]):
            r.fail(w, f"no Errors alarm for {name}")
        if f["schedule"] and not any(a["metric"] == "AWS/Lambda/Invocations" and a["on"] == name
                                     and a["op"] == "LessThanThreshold" and a["missing"] == "breaching" for a in m["alarms"]):
            r.fail(w, f"no '{name} has not run' alarm (Invocations < threshold, TreatMissingData breaching)")

    for e in c["event_sources"]:
        qn, fn = n(e["queue"]), e["function"]
        esm = [x for x in m["functions"].get(fn, {"esm": []})["esm"] if x["queue"] == qn]
        if len(esm) != 1:
            r.fail(w, f"{fn} has {len(esm)} event sources on {qn}, contract says 1")
            continue
        got = {k: esm[0][k] for k in ("batch", "window", "max_concurrency", "response_types", "enabled")}
        want = {"batch": e["batch_size"], "window": e["batching_window_secs"], "max_concurrency": e["max_concurrency"],
                "response_types": sorted(e["function_response_types"]), "enabled": True}
        for k in want:
            if got[k] != want[k]:
                r.fail(w, f"{fn} on {qn}: event source {k} {got[k]}, contract says {want[k]}")

    for q in c["queues"]:
        for metric, on in (("ApproximateNumberOfMessagesVisible", n(q["dead_letter_queue"]["suffix"])),
                           ("ApproximateAgeOfOldestMessage", n(q["suffix"]))):
            if not any(a["metric"] == f"AWS/SQS/{metric}" and a["on"] == on for a in m["alarms"]):
                r.fail(w, f"no {metric} alarm on {on}")
    for a in m["alarms"]:
        if not a["actions"]:
            r.fail(w, f"alarm on {a['on']} ({a['metric']}) notifies nobody")
    if not m["http_api"].get("burst") or not m["http_api"].get("rate"):
        r.fail(w, f"HTTP API stage has no default route throttling ({m['http_api']})")


def parity(sam: dict, cdk: dict, r: Report) -> None:
    """SAM and CDK deploy the same thing, also where the contract says nothing."""
    w = "SAM vs CDK"
    for name in sorted(set(sam["functions"]) & set(cdk["functions"])):
        a, b = sam["functions"][name], cdk["functions"][name]
        for k in ("arch", "env"):
            if a[k] != b[k]:
                r.fail(w, f"{name} {k}: SAM {a[k]} vs CDK {b[k]}")
        # CDK's SqsEventSource also grants sqs:GetQueueUrl, which SAM's explicit statement omits.
        ga, gb = ({g for g in x["grants"] if g[0] != "sqs:GetQueueUrl"} for x in (a, b))
        if ga != gb:
            r.fail(w, f"{name} permissions differ: only SAM {sorted(ga - gb)}, only CDK {sorted(gb - ga)}")
    akey = lambda a: (a["metric"], str(a["on"]), a["op"], a["threshold"], a["missing"], a["periods"], a["period"])  # noqa: E731
    sa, ca = set(map(akey, sam["alarms"])), set(map(akey, cdk["alarms"]))
    if sa != ca:
        r.fail(w, f"alarms differ: only SAM {sorted(sa - ca)}, only CDK {sorted(ca - sa)}")
    if sam["topics"] != cdk["topics"]:
        r.fail(w, f"topics differ: SAM {sam['topics']} vs CDK {cdk['topics']}")
    ha, hb = ({k: x["http_api"].get(k) for k in ("burst", "rate", "access_logs")} for x in (sam, cdk))
    if ha != hb:
        r.fail(w, f"HTTP API stage differs: SAM {ha} vs CDK {hb}")


def check_function_packages(repo: Path, c: dict, r: Report) -> None:
    """Every contract function is a package functions/<name> named netmon-fn-<name>, and back."""
    w = "functions/"
    dirs = {p.parent.name: p for p in (repo / "functions").glob("*/Cargo.toml")}
    for name in sorted(set(dirs) - {f["name"] for f in c["functions"]}):
        r.fail(w, f"functions/{name} is not in the contract (resources::FUNCTIONS), so nothing deploys it")
    for f in c["functions"]:
        if f["name"] not in dirs:
            r.fail(w, f"contract function {f['name']} has no package functions/{f['name']}")
            continue
        pkg = tomllib.loads(dirs[f["name"]].read_text()).get("package", {}).get("name")
        if pkg != f"netmon-fn-{f['name']}":
            r.fail(w, f"functions/{f['name']}/Cargo.toml package is {pkg!r}, expected 'netmon-fn-{f['name']}'")


def check_sam_drain_parameters(cfn: Cfn, c: dict, r: Report) -> None:
    """Each drain's interval is a SAM parameter with the contract's default and choices."""
    for d in c.get("drains", []):
        name = d["every_minutes"]["parameter"]
        pascal = name[0].upper() + name[1:]
        p = cfn.t.get("Parameters", {}).get(pascal)
        if not p:
            r.fail("SAM template", f"no parameter {pascal} (the {d['function']} drain interval, contract {name})")
            continue
        if str(p.get("Default")) != str(d["every_minutes"]["default"]):
            r.fail("SAM template", f"{pascal} default {p.get('Default')!r}, contract says {d['every_minutes']['default']}")
        if sorted(map(int, p.get("AllowedValues") or [])) != sorted(d["every_minutes"]["allowed"]):
            r.fail("SAM template", f"{pascal} AllowedValues {p.get('AllowedValues')}, contract says {d['every_minutes']['allowed']}")


def check_sam_build(template: Path, sam: dict, r: Report) -> None:
    """What `sam build` needs: CodeUri, cargo-lambda build method and binary name per function."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    raw = yaml.load(template.read_text(), Loader=Loader).get("Resources", {})
    for name, f in sam["functions"].items():
        res = raw.get(f["logical"]) or {}
        build = (res.get("Metadata") or {})
        code_uri = (res.get("Properties") or {}).get("CodeUri")
        if code_uri != f"../functions/{name}":
            r.fail("SAM template", f"{f['logical']} CodeUri {code_uri!r}, expected '../functions/{name}'")
        if build.get("BuildMethod") != "rust-cargolambda" or (build.get("BuildProperties") or {}).get("Binary") != f"netmon-fn-{name}":
            r.fail("SAM template", f"{f['logical']} Metadata is not BuildMethod rust-cargolambda, Binary netmon-fn-{name}")


def translate_sam(path: Path) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import logging
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "unpublished metrics" noise
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    sam = copy.deepcopy(yaml_parse(path.read_text()))
    for lid, res in sam.get("Resources", {}).items():
        props = res.get("Properties", {})
        # Local CodeUri paths are uploaded by `sam package`; the translator only accepts S3 URIs.
        if res.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://offline-translation/{lid}.zip"

    class NoManagedPolicies:  # the template names no managed policy, so no IAM lookup is needed
        def load(self) -> dict:
            return {}
    return transform(sam, {}, NoManagedPolicies())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--contract", type=Path, help="default REPO/infra/contract.json")
    ap.add_argument("--template", type=Path, help="SAM template (default REPO/infra/template.yaml)")
    ap.add_argument("--cdk-template", type=Path, help="synthesized CDK template JSON")
    ap.add_argument("--stage", default="dev")
    args = ap.parse_args(argv)
    repo = args.repo.resolve()
    contract = load_contract(args.contract or repo / "infra/contract.json")
    template = args.template or repo / "infra/template.yaml"
    prefix = f"netmon-{args.stage}"
    r = Report()
    check_function_packages(repo, contract, r)
    try:
        sam_cfn = translate_sam(template)
    except Exception as e:  # the translator's own message names the resource
        print(f"FAIL: SAM translation of {template} failed: {e}", file=sys.stderr)
        return 1
    sam_model_cfn = Cfn(sam_cfn, {"Stage": args.stage})
    sam = build_model("SAM template", sam_model_cfn, prefix)
    check_model(sam, contract, r)
    check_sam_drain_parameters(sam_model_cfn, contract, r)
    check_sam_build(template, sam, r)
    labels = [sam["label"]]
    if args.cdk_template:
        cdk = build_model("CDK synth", Cfn(json.loads(args.cdk_template.read_text()), {}), prefix)
        check_model(cdk, contract, r)
        parity(sam, cdk, r)
        labels.append(cdk["label"])

    print(f"drift check: contract {len(contract['tables'])} tables, {len(contract['topics'])} topics, "
          f"{len(contract['queues'])} queues, {len(contract['subscriptions'])} subscriptions, "
          f"{len(contract['event_sources'])} event sources, {len(contract.get('drains', []))} drained queues, "
          f"{len(contract['functions'])} functions; "
          f"checked: {', '.join(labels)}, functions/")
    for f in r.failures:
        print(f"DRIFT {f}")
    if r.failures:
        print(f"drift check FAILED: {len(r.failures)} finding(s)")
        return 1
    print("drift check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
