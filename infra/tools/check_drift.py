#!/usr/bin/env python3
"""Drift check between netmon's resource contract and its deployments.

Sources of truth, all read from the repository (nothing is hard-coded here):
  * crates/netmon-aws/src/resources.rs   env var names, name suffixes, keys, GSI, TTL,
                                          subscriptions + filter types, MAX_RECEIVE_COUNT
  * localstack/init/ready.d/netmon-resources.sh
                                          the queue -> consumer timeout map, the 6x visibility rule,
                                          retention periods, the GSI JSON, the subscribe calls
  * functions/<name>/src/**/*.rs          which env vars each function reads (ENV_* constant uses
                                          and "NETMON_*" literals)
Checked against:
  * infra/template.yaml, translated offline to CloudFormation with aws-sam-translator
  * the CDK app's synthesized template (cdk.out/<stack>.template.json), when given
and SAM vs CDK against each other (functions, event sources, queues, subscriptions, tables).

Usage:
  check_drift.py --repo DIR [--cdk-template FILE] [--stage dev]
Exit status 0: no drift. 1: drift (every finding is printed). 2: usage or parse error.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------------------
# The contract: resources.rs


@dataclass
class Contract:
    consts: dict[str, str]
    env_names: dict[str, str]  # ENV_STATE_TABLE -> NETMON_STATE_TABLE
    tables: dict[str, dict]  # suffix -> {"gsi": {...} | None}
    topics: list[str]
    queues: list[str]
    dlq_suffix: str
    pk: str
    sk: str
    ttl: str
    type_attribute: str
    subscriptions: list[tuple[str, str, list[str]]]
    max_receive_count: int
    # (queue suffix, function, batch size, batching window s, max concurrency, function timeout s)
    event_sources: list[tuple[str, str, int, int, int, int]]


def parse_resources_rs(path: Path) -> Contract:
    text = path.read_text()
    # Drop // comments so documentation examples never count as code.
    code = re.sub(r"//[^\n]*", "", text)
    consts = dict(re.findall(r'pub\s+const\s+([A-Z0-9_]+)\s*:\s*&str\s*=\s*"([^"]*)"\s*;', code))
    m = re.search(r"pub\s+const\s+MAX_RECEIVE_COUNT\s*:\s*u\d+\s*=\s*(\d+)\s*;", code)
    if not m:
        raise SystemExit(f"{path}: MAX_RECEIVE_COUNT not found")
    max_receive = int(m.group(1))

    m = re.search(r"pub\s+const\s+SUBSCRIPTIONS\s*:[^=]*=\s*&\[(.*?)\];", code, re.S)
    if not m:
        raise SystemExit(f"{path}: SUBSCRIPTIONS not found")

    def value(tok: str) -> str:
        tok = tok.strip()
        if tok.startswith('"'):
            return tok.strip('"')
        if tok not in consts:
            raise SystemExit(f"{path}: SUBSCRIPTIONS uses unknown constant {tok}")
        return consts[tok]

    subs = []
    for topic, queue, types in re.findall(r"\(\s*([A-Z0-9_]+|\"[^\"]*\")\s*,\s*([A-Z0-9_]+|\"[^\"]*\")\s*,\s*&\[([^\]]*)\]\s*,?\s*\)", m.group(1)):
        subs.append((value(topic), value(queue), [value(t) for t in types.split(",") if t.strip()]))
    if not subs:
        raise SystemExit(f"{path}: could not parse any SUBSCRIPTIONS entry")

    def need(name: str) -> str:
        if name not in consts:
            raise SystemExit(f"{path}: constant {name} not found")
        return consts[name]

    m = re.search(r"pub\s+const\s+EVENT_SOURCES\s*:[^=]*=\s*&\[(.*?)\];", code, re.S)
    if not m:
        raise SystemExit(f"{path}: EVENT_SOURCES not found")
    event_sources = [
        (value(q), f, int(b), int(win), int(conc), int(t))
        for q, f, b, win, conc, t in re.findall(
            r"\(\s*([A-Z0-9_]+|\"[^\"]*\")\s*,\s*\"([^\"]+)\"\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)",
            m.group(1))
    ]
    if not event_sources:
        raise SystemExit(f"{path}: could not parse any EVENT_SOURCES entry")

    tables = {}
    for k, v in consts.items():
        if k.endswith("_TABLE_SUFFIX"):
            tables[v] = {"gsi": None}
    # The outbox GSI lives on the state table (resources.rs: "State table GSI over pending outbox").
    state = need("STATE_TABLE_SUFFIX")
    tables[state]["gsi"] = {"name": need("OUTBOX_INDEX"), "pk": need("OUTBOX_INDEX_PK"), "sk": need("OUTBOX_INDEX_SK")}
    return Contract(
        consts=consts,
        env_names={k: v for k, v in consts.items() if k.startswith("ENV_")},
        tables=tables,
        topics=[v for k, v in consts.items() if k.endswith("_TOPIC_SUFFIX")],
        queues=[v for k, v in consts.items() if k.endswith("_QUEUE_SUFFIX")],
        dlq_suffix=need("DLQ_SUFFIX"),
        pk=need("PK"),
        sk=need("SK"),
        ttl=need("TTL"),
        type_attribute=need("TYPE_ATTRIBUTE"),
        subscriptions=subs,
        max_receive_count=max_receive,
        event_sources=event_sources,
    )


# ------------------------------------------------------------------------------------------------
# The resource script: what it creates and the timeout map behind its visibility rule


@dataclass
class ScriptIntent:
    function_timeout: dict[str, int]  # queue suffix -> consumer timeout (s)
    visibility_factor: int
    queues: list[str]
    topics: list[str]
    queue_retention: int | None
    dlq_retention: int | None
    gsi: dict | None
    ttl: str | None
    subscriptions: list[tuple[str, str, list[str]]]
    max_receive_default: int | None
    tables: list[str]


def parse_resource_script(path: Path) -> ScriptIntent:
    text = path.read_text()

    def arr(name: str) -> list[str]:
        m = re.search(rf"^{name}=\(([^)]*)\)", text, re.M)
        if not m:
            raise SystemExit(f"{path}: array {name}=(...) not found")
        return m.group(1).split()

    m = re.search(r"declare -A function_timeout=\(([^)]*)\)", text)
    if not m:
        raise SystemExit(f"{path}: function_timeout map not found")
    timeouts = {k: int(v) for k, v in re.findall(r"\[([a-z0-9-]+)\]=(\d+)", m.group(1))}
    m = re.search(r"function_timeout\[\$q\]\}\s*\*\s*(\d+)", text)
    factor = int(m.group(1)) if m else 0
    m = re.search(r'"MessageRetentionPeriod":"(\d+)"', text)
    queue_retention = int(m.group(1)) if m else None
    m = re.search(r"-dlq\".*?MessageRetentionPeriod=(\d+)", text, re.S)
    dlq_retention = int(m.group(1)) if m else None
    m = re.search(r"GSI='(\[.*?\])'", text, re.S)
    gsi = None
    if m:
        g = json.loads(m.group(1))[0]
        keys = {k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]}
        gsi = {"name": g["IndexName"], "pk": keys.get("HASH"), "sk": keys.get("RANGE"),
               "projection": g.get("Projection", {}).get("ProjectionType")}
    m = re.search(r"Enabled=true,AttributeName=([A-Za-z0-9_]+)", text)
    ttl = m.group(1) if m else None
    subs = []
    for line in re.findall(r"^subscribe ([^&\n]+)&", text, re.M):
        parts = line.split()
        subs.append((parts[0], parts[1], parts[2:]))
    m = re.search(r'max_receive="\$\{NETMON_MAX_RECEIVE_COUNT:-(\d+)\}"', text)
    tables = re.findall(r'create_table "\$prefix-([a-z0-9-]+)"', text)
    return ScriptIntent(timeouts, factor, arr("queues"), arr("topics"), queue_retention, dlq_retention,
                        gsi, ttl, subs, int(m.group(1)) if m else None, tables)


# ------------------------------------------------------------------------------------------------
# Which env vars each function reads


def function_env_reads(fn_dir: Path, contract: Contract) -> tuple[dict[str, list[str]], list[str]]:
    """Returns ({NETMON_X: [file:line, ...]}, [unknown ENV_* constants])."""
    reads: dict[str, list[str]] = {}
    unknown: list[str] = []
    for rs in sorted((fn_dir / "src").rglob("*.rs")):
        text = rs.read_text()
        # `use` items only import names; blank them (keeping line numbers) so a finding points at
        # the line that actually reads the variable.
        text = re.sub(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?use\s[^;]*;", lambda m: "\n" * m.group(0).count("\n"), text)
        for lineno, line in enumerate(text.splitlines(), 1):
            code = line.split("//", 1)[0]
            where = f"{rs.relative_to(fn_dir.parent.parent)}:{lineno}"
            for const in re.findall(r"\b(ENV_[A-Z0-9_]+)\b", code):
                if const in contract.env_names:
                    reads.setdefault(contract.env_names[const], []).append(where)
                else:
                    unknown.append(f"{where}: {const} is not a constant of resources.rs")
            for lit in re.findall(r'"(NETMON_[A-Z0-9_]+)"', code):
                reads.setdefault(lit, []).append(where)
    return reads, unknown


# ------------------------------------------------------------------------------------------------
# CloudFormation evaluation (just enough intrinsics for names and references)

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "netmon-stack", "AWS::NoValue": None}


class Cfn:
    def __init__(self, template: dict, params: dict[str, str]):
        self.t = template
        self.res: dict[str, dict] = template.get("Resources", {})
        self.params = {}
        for name, p in template.get("Parameters", {}).items():
            if name in params:
                self.params[name] = params[name]
            elif "Default" in p:
                self.params[name] = str(p["Default"])
        self.conds: dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self.cond(name)

    def cond(self, name: str) -> bool:
        if name not in self.conds:
            self.conds[name] = bool(self._cond_expr(self.t["Conditions"][name]))
        return self.conds[name]

    def _cond_expr(self, e: Any) -> Any:
        if isinstance(e, dict) and len(e) == 1:
            (k, v), = e.items()
            if k == "Fn::Equals":
                return self.ev(v[0]) == self.ev(v[1])
            if k == "Fn::Not":
                return not self._cond_expr(v[0])
            if k == "Fn::And":
                return all(self._cond_expr(x) for x in v)
            if k == "Fn::Or":
                return any(self._cond_expr(x) for x in v)
            if k == "Condition":
                return self.cond(v)
        return self.ev(e)

    def ev(self, e: Any) -> Any:
        """Evaluates intrinsics; resource references become «ref:Id» / «Id.Attr» strings."""
        if isinstance(e, list):
            return [self.ev(x) for x in e]
        if not isinstance(e, dict):
            return e
        if len(e) == 1:
            (k, v), = e.items()
            if k == "Ref":
                if v in self.params:
                    return self.params[v]
                if v in PSEUDO:
                    return PSEUDO[v]
                return f"«ref:{v}»"
            if k == "Fn::GetAtt":
                if isinstance(v, str):
                    v = v.split(".", 1)
                return f"«{v[0]}.{self.ev(v[1])}»"
            if k == "Fn::Sub":
                s, extra = (v, {}) if isinstance(v, str) else (v[0], {n: self.ev(x) for n, x in v[1].items()})

                def sub(m: re.Match) -> str:
                    name = m.group(1)
                    if name.startswith("!"):
                        return "${" + name[1:] + "}"
                    if name in extra:
                        return str(extra[name])
                    if "." in name:
                        return str(self.ev({"Fn::GetAtt": name.split(".", 1)}))
                    return str(self.ev({"Ref": name}))
                return re.sub(r"\$\{([^}]+)\}", sub, s)
            if k == "Fn::Join":
                return str(v[0]).join(str(self.ev(x)) for x in v[1])
            if k == "Fn::If":
                return self.ev(v[1] if self.cond(v[0]) else v[2])
            if k == "Fn::Select":
                return self.ev(v[1])[int(self.ev(v[0]))]
            if k == "Fn::Split":
                return str(self.ev(v[1])).split(v[0])
        return {k: self.ev(x) for k, x in e.items()}

    def of_type(self, type_: str):
        for lid, r in self.res.items():
            if r.get("Type") == type_ and ("Condition" not in r or self.cond(r["Condition"])):
                yield lid, self.ev(r.get("Properties", {}))


def ref_id(token: Any) -> str | None:
    """«ref:Foo» or «Foo.Arn» -> Foo."""
    if isinstance(token, str):
        m = re.fullmatch(r"«(?:ref:)?([A-Za-z0-9]+)(?:\.[A-Za-z.]+)?»", token)
        if m:
            return m.group(1)
    return None


# ------------------------------------------------------------------------------------------------
# A deployment-neutral model of one template


@dataclass
class Model:
    label: str
    prefix: str
    functions: dict[str, dict] = field(default_factory=dict)  # short name -> settings
    queues: dict[str, dict] = field(default_factory=dict)  # physical name -> attrs
    topics: dict[str, str] = field(default_factory=dict)  # physical name -> logical id
    tables: dict[str, dict] = field(default_factory=dict)
    subscriptions: list[dict] = field(default_factory=list)
    queue_senders: dict[str, set] = field(default_factory=dict)  # queue name -> topic names allowed
    schedules: list[dict] = field(default_factory=list)
    alarms: list[dict] = field(default_factory=list)
    http_api: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def build_model(label: str, cfn: Cfn, stage: str) -> Model:
    prefix = f"netmon-{stage}"
    m = Model(label, prefix)
    names: dict[str, str] = {}  # logical id -> physical name, for queues/topics/tables/functions

    for lid, p in cfn.of_type("AWS::SQS::Queue"):
        names[lid] = p.get("QueueName", f"?{lid}")
    for lid, p in cfn.of_type("AWS::SNS::Topic"):
        names[lid] = p.get("TopicName", f"?{lid}")
        m.topics[names[lid]] = lid
    for lid, p in cfn.of_type("AWS::DynamoDB::Table"):
        names[lid] = p.get("TableName", f"?{lid}")
    for lid, p in cfn.of_type("AWS::Lambda::Function"):
        names[lid] = p.get("FunctionName", f"?{lid}")

    def name_of(token: Any) -> str:
        lid = ref_id(token)
        return names.get(lid, f"<unresolved {token}>") if lid else str(token)

    def short(fn_name: str) -> str:
        return fn_name[len(prefix) + 1:] if fn_name.startswith(prefix + "-") else fn_name

    for lid, p in cfn.of_type("AWS::SQS::Queue"):
        rp = p.get("RedrivePolicy")
        if isinstance(rp, str):
            rp = json.loads(rp)
        m.queues[names[lid]] = {
            "visibility": int(p.get("VisibilityTimeout", 30)),
            "retention": int(p.get("MessageRetentionPeriod", 345600)),
            "dlq": name_of(rp["deadLetterTargetArn"]) if rp else None,
            "max_receive": int(rp["maxReceiveCount"]) if rp else None,
            "sse": bool(p.get("SqsManagedSseEnabled") or p.get("KmsMasterKeyId")),
        }

    for lid, p in cfn.of_type("AWS::DynamoDB::Table"):
        attrs = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])}
        keys = {k["KeyType"]: k["AttributeName"] for k in p.get("KeySchema", [])}
        gsis = {}
        for g in p.get("GlobalSecondaryIndexes", []) or []:
            gk = {k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]}
            gsis[g["IndexName"]] = {"pk": gk.get("HASH"), "sk": gk.get("RANGE"),
                                    "projection": g.get("Projection", {}).get("ProjectionType")}
        ttl = p.get("TimeToLiveSpecification") or {}
        m.tables[names[lid]] = {
            "attrs": attrs, "pk": keys.get("HASH"), "sk": keys.get("RANGE"), "gsis": gsis,
            "ttl": ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true") else None,
            "billing": p.get("BillingMode"),
            "pitr": (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") in (True, "true"),
            "sse": (p.get("SSESpecification") or {}).get("SSEEnabled") in (True, "true"),
        }

    for lid, p in cfn.of_type("AWS::SNS::Subscription"):
        if p.get("Protocol") != "sqs":
            continue
        fp = p.get("FilterPolicy")
        if isinstance(fp, str):
            fp = json.loads(fp)
        m.subscriptions.append({
            "topic": name_of(p.get("TopicArn")), "queue": name_of(p.get("Endpoint")),
            "raw": p.get("RawMessageDelivery") in (True, "true"),
            "filter": fp, "scope": p.get("FilterPolicyScope", "MessageAttributes"),
        })

    for lid, p in cfn.of_type("AWS::SQS::QueuePolicy"):
        for st in p.get("PolicyDocument", {}).get("Statement", []):
            if st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal", {})
            actions = st.get("Action")
            actions = [actions] if isinstance(actions, str) else actions or []
            if principal.get("Service") != "sns.amazonaws.com" or "sqs:SendMessage" not in actions:
                continue
            source = (st.get("Condition", {}).get("ArnEquals", {}) or {}).get("aws:SourceArn")
            resources = st.get("Resource")
            resources = [resources] if not isinstance(resources, list) else resources
            for r in resources:
                m.queue_senders.setdefault(name_of(r), set()).add(name_of(source) if source else "*ANY*")

    roles: dict[str, dict] = {lid: p for lid, p in cfn.of_type("AWS::IAM::Role")}
    role_statements: dict[str, list] = {lid: [] for lid in roles}
    for lid, p in roles.items():
        for pol in p.get("Policies", []) or []:
            role_statements[lid].extend(pol.get("PolicyDocument", {}).get("Statement", []))
    for lid, p in cfn.of_type("AWS::IAM::Policy"):
        for r in p.get("Roles", []):
            rid = ref_id(r)
            if rid in role_statements:
                role_statements[rid].extend(p.get("PolicyDocument", {}).get("Statement", []))

    by_lid: dict[str, str] = {}
    for lid, p in cfn.of_type("AWS::Lambda::Function"):
        s = short(names[lid])
        by_lid[lid] = s
        archs = p.get("Architectures") or ["x86_64"]
        role = ref_id(p.get("Role"))
        grants = []
        for st in role_statements.get(role, []):
            if st.get("Effect") != "Allow":
                continue
            acts = st.get("Action")
            acts = [acts] if isinstance(acts, str) else acts
            ress = st.get("Resource")
            ress = [ress] if not isinstance(ress, list) else ress
            for a in acts:
                for r in ress:
                    grants.append((a, resource_label(r, names)))
        m.functions[s] = {
            "logical": lid,
            "runtime": p.get("Runtime"), "handler": p.get("Handler"), "arch": archs[0],
            "memory": int(p.get("MemorySize", 128)), "timeout": int(p.get("Timeout", 3)),
            "env": {k: env_label(v, names) for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()},
            "managed_policies": sorted(str(x).rsplit("/", 1)[-1] for x in (roles.get(role, {}).get("ManagedPolicyArns") or [])),
            "grants": sorted(set(grants)),
            "metadata": cfn.res[lid].get("Metadata", {}),
            "log_group": bool((p.get("LoggingConfig") or {}).get("LogGroup")),
            "esm": [],
        }

    for lid, p in cfn.of_type("AWS::Lambda::EventSourceMapping"):
        fn = by_lid.get(ref_id(p.get("FunctionName")) or "", f"<unresolved {p.get('FunctionName')}>")
        esm = {
            "queue": name_of(p.get("EventSourceArn")),
            "batch": int(p.get("BatchSize", 10)),
            "window": int(p.get("MaximumBatchingWindowInSeconds", 0)),
            "response_types": sorted(p.get("FunctionResponseTypes", []) or []),
            "max_concurrency": (p.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            "enabled": p.get("Enabled", True) in (True, "true"),
        }
        if fn in m.functions:
            m.functions[fn]["esm"].append(esm)
        else:
            m.problems.append(f"event source mapping {lid} targets an unknown function {fn}")

    for lid, p in cfn.of_type("AWS::Events::Rule"):
        if "ScheduleExpression" in p:
            targets = [by_lid.get(ref_id(t.get("Arn")) or "", str(t.get("Arn"))) for t in p.get("Targets", [])]
            m.schedules.append({"expr": p["ScheduleExpression"], "targets": targets,
                                "enabled": p.get("State", "ENABLED") == "ENABLED"})
    for lid, p in cfn.of_type("AWS::Scheduler::Schedule"):
        target = by_lid.get(ref_id(p.get("Target", {}).get("Arn")) or "", "?")
        m.schedules.append({"expr": p.get("ScheduleExpression"), "targets": [target],
                            "enabled": p.get("State", "ENABLED") == "ENABLED"})

    for lid, p in cfn.of_type("AWS::CloudWatch::Alarm"):
        dims = {d["Name"]: d["Value"] for d in p.get("Dimensions", []) or []}
        dim_val = dims.get("FunctionName") or dims.get("QueueName")
        dim_name = None
        if dim_val is not None:
            dim_lid = ref_id(dim_val)
            dim_name = names.get(dim_lid, str(dim_val)) if dim_lid else str(dim_val)
            if dims.get("FunctionName") is not None:
                dim_name = short(dim_name)
        m.alarms.append({"metric": f'{p.get("Namespace")}/{p.get("MetricName")}', "on": dim_name,
                         "op": p.get("ComparisonOperator"), "threshold": float(p.get("Threshold", 0)),
                         "missing": p.get("TreatMissingData", "missing"),
                         "periods": int(p.get("EvaluationPeriods", 1)), "period": int(p.get("Period", 60)),
                         "actions": len(p.get("AlarmActions", []) or [])})

    for lid, p in cfn.of_type("AWS::ApiGatewayV2::Stage"):
        d = p.get("DefaultRouteSettings") or {}
        num = lambda x: float(x) if x is not None else None  # noqa: E731 (parameters are strings)
        m.http_api = {"burst": num(d.get("ThrottlingBurstLimit")), "rate": num(d.get("ThrottlingRateLimit")),
                      "access_logs": bool(p.get("AccessLogSettings"))}
    for lid, p in cfn.of_type("AWS::ApiGatewayV2::Route"):
        m.http_api.setdefault("routes", []).append(p.get("RouteKey"))
    return m


def resource_label(r: Any, names: dict[str, str]) -> str:
    """Normalises a policy resource to a name both SAM and CDK spell alike."""
    s = str(r)
    for lid, name in names.items():
        s = s.replace(f"«{lid}.Arn»", name).replace(f"«ref:{lid}»", name)
    return s


def env_label(v: Any, names: dict[str, str]) -> str:
    lid = ref_id(v)
    if lid and lid in names:
        return f"-> {names[lid]}"
    return str(v)


# ------------------------------------------------------------------------------------------------
# The checks


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.notes: list[str] = []

    def fail(self, where: str, msg: str) -> None:
        self.failures.append(f"[{where}] {msg}")

    def note(self, msg: str) -> None:
        self.notes.append(msg)


def check_script_vs_contract(c: Contract, s: ScriptIntent, r: Report) -> None:
    w = "resource script vs resources.rs"
    if sorted(s.queues) != sorted(c.queues):
        r.fail(w, f"queues differ: script {sorted(s.queues)} vs resources.rs {sorted(c.queues)}")
    if sorted(s.topics) != sorted(c.topics):
        r.fail(w, f"topics differ: script {sorted(s.topics)} vs resources.rs {sorted(c.topics)}")
    if sorted(s.tables) != sorted(c.tables):
        r.fail(w, f"tables differ: script {sorted(s.tables)} vs resources.rs {sorted(c.tables)}")
    if sorted(s.function_timeout) != sorted(c.queues):
        r.fail(w, f"function_timeout map covers {sorted(s.function_timeout)}, queues are {sorted(c.queues)}")
    exp_gsi = c.tables[c.consts["STATE_TABLE_SUFFIX"]]["gsi"]
    if not s.gsi or {k: s.gsi[k] for k in ("name", "pk", "sk")} != exp_gsi:
        r.fail(w, f"GSI differs: script {s.gsi} vs resources.rs {exp_gsi}")
    if s.ttl != c.ttl:
        r.fail(w, f"TTL attribute: script {s.ttl!r} vs resources.rs {c.ttl!r}")
    if s.max_receive_default != c.max_receive_count:
        r.fail(w, f"maxReceiveCount default {s.max_receive_default} vs MAX_RECEIVE_COUNT {c.max_receive_count}")
    if sorted(map(_sub_key, s.subscriptions)) != sorted(map(_sub_key, c.subscriptions)):
        r.fail(w, f"subscriptions differ: script {sorted(map(_sub_key, s.subscriptions))} vs resources.rs {sorted(map(_sub_key, c.subscriptions))}")
    if s.visibility_factor != 6:
        r.fail(w, f"visibility rule is {s.visibility_factor}x the consumer timeout, expected 6x")


def _sub_key(sub: tuple[str, str, list[str]]) -> tuple[str, str, tuple[str, ...]]:
    return (sub[0], sub[1], tuple(sorted(sub[2])))


def check_model(m: Model, c: Contract, s: ScriptIntent, fn_reads: dict[str, dict], r: Report) -> None:
    w = m.label
    for p in m.problems:
        r.fail(w, p)
    n = lambda suffix: f"{m.prefix}-{suffix}"  # noqa: E731

    # Tables
    for suffix, spec in c.tables.items():
        t = m.tables.get(n(suffix))
        if not t:
            r.fail(w, f"table {n(suffix)} missing (tables: {sorted(m.tables)})")
            continue
        if (t["pk"], t["sk"]) != (c.pk, c.sk):
            r.fail(w, f"table {n(suffix)} keys are ({t['pk']}, {t['sk']}), expected ({c.pk}, {c.sk})")
        for a in (c.pk, c.sk):
            if t["attrs"].get(a) != "S":
                r.fail(w, f"table {n(suffix)} attribute {a} is {t['attrs'].get(a)}, expected S")
        if t["ttl"] != c.ttl:
            r.fail(w, f"table {n(suffix)} TTL attribute is {t['ttl']!r}, expected {c.ttl!r} (enabled)")
        if t["billing"] != "PAY_PER_REQUEST":
            r.fail(w, f"table {n(suffix)} billing {t['billing']}, expected PAY_PER_REQUEST")
        if not t["pitr"]:
            r.fail(w, f"table {n(suffix)} has no point-in-time recovery")
        if not t["sse"]:
            r.fail(w, f"table {n(suffix)} has no SSESpecification.SSEEnabled")
        g = spec["gsi"]
        if g:
            got = t["gsis"].get(g["name"])
            if not got:
                r.fail(w, f"table {n(suffix)} lacks GSI {g['name']} (has {sorted(t['gsis'])})")
            else:
                if (got["pk"], got["sk"]) != (g["pk"], g["sk"]):
                    r.fail(w, f"GSI {g['name']} keys ({got['pk']}, {got['sk']}), expected ({g['pk']}, {g['sk']})")
                if s.gsi and got["projection"] != s.gsi.get("projection"):
                    r.fail(w, f"GSI {g['name']} projection {got['projection']}, script says {s.gsi.get('projection')}")
        extra = set(t["gsis"]) - ({g["name"]} if g else set())
        if extra:
            r.fail(w, f"table {n(suffix)} has GSIs resources.rs does not define: {sorted(extra)}")
    for extra in sorted(set(m.tables) - {n(x) for x in c.tables}):
        r.fail(w, f"table {extra} is not in resources.rs")

    # Topics
    for suffix in c.topics:
        if n(suffix) not in m.topics:
            r.fail(w, f"topic {n(suffix)} missing (topics: {sorted(m.topics)})")

    # Queues, DLQs, redrive, visibility = 6 x consumer timeout
    consumers: dict[str, list[tuple[str, dict]]] = {}
    for fname, f in m.functions.items():
        for e in f["esm"]:
            consumers.setdefault(e["queue"], []).append((fname, f))
    for suffix in c.queues:
        qn, dn = n(suffix), n(suffix + c.dlq_suffix)
        q = m.queues.get(qn)
        if not q:
            r.fail(w, f"queue {qn} missing (queues: {sorted(m.queues)})")
            continue
        if dn not in m.queues:
            r.fail(w, f"DLQ {dn} missing")
        if q["dlq"] != dn:
            r.fail(w, f"queue {qn} redrives to {q['dlq']}, expected {dn}")
        if q["max_receive"] != c.max_receive_count:
            r.fail(w, f"queue {qn} maxReceiveCount {q['max_receive']}, expected MAX_RECEIVE_COUNT={c.max_receive_count}")
        if s.queue_retention and q["retention"] != s.queue_retention:
            r.fail(w, f"queue {qn} retention {q['retention']} s, script uses {s.queue_retention} s")
        if dn in m.queues and s.dlq_retention and m.queues[dn]["retention"] != s.dlq_retention:
            r.fail(w, f"DLQ {dn} retention {m.queues[dn]['retention']} s, script uses {s.dlq_retention} s")
        cons = consumers.get(qn, [])
        if len(cons) != 1:
            r.fail(w, f"queue {qn} has {len(cons)} consuming functions ({[x[0] for x in cons]}), expected 1")
        else:
            fname, f = cons[0]
            expected_timeout = s.function_timeout.get(suffix)
            if expected_timeout is not None and f["timeout"] != expected_timeout:
                r.fail(w, f"{fname} (consumes {qn}) timeout {f['timeout']} s, the resource script's function_timeout says {expected_timeout} s")
            if q["visibility"] != s.visibility_factor * f["timeout"]:
                r.fail(w, f"queue {qn} visibility {q['visibility']} s != {s.visibility_factor} x {fname} timeout {f['timeout']} s")
        if not q["sse"]:
            r.fail(w, f"queue {qn} is not encrypted")
    known_q = {n(x) for x in c.queues} | {n(x + c.dlq_suffix) for x in c.queues}
    for extra in sorted(set(m.queues) - known_q):
        r.fail(w, f"queue {extra} is not in resources.rs")

    # Subscriptions
    for topic, queue, types in c.subscriptions:
        tn, qn = n(topic), n(queue)
        found = [x for x in m.subscriptions if x["topic"] == tn and x["queue"] == qn]
        if len(found) != 1:
            r.fail(w, f"subscription {tn} -> {qn}: found {len(found)}, expected 1")
            continue
        sub = found[0]
        if not sub["raw"]:
            r.fail(w, f"subscription {tn} -> {qn} lacks RawMessageDelivery")
        want = {c.type_attribute: sorted(types)}
        got = {k: sorted(v) if isinstance(v, list) else v for k, v in (sub["filter"] or {}).items()}
        if got != want:
            r.fail(w, f"subscription {tn} -> {qn} FilterPolicy {sub['filter']}, expected {want}")
        if sub["scope"] != "MessageAttributes":
            r.fail(w, f"subscription {tn} -> {qn} FilterPolicyScope {sub['scope']}, expected MessageAttributes")
        if tn not in m.queue_senders.get(qn, set()):
            r.fail(w, f"no queue policy lets topic {tn} send to {qn} (allowed: {sorted(m.queue_senders.get(qn, set()))})")
    expected_pairs = {(n(t), n(q)) for t, q, _ in c.subscriptions}
    for sub in m.subscriptions:
        if (sub["topic"], sub["queue"]) not in expected_pairs:
            r.fail(w, f"subscription {sub['topic']} -> {sub['queue']} is not in resources::SUBSCRIPTIONS")

    # Functions: env vars they read, SQS event sources
    for fname, f in m.functions.items():
        if f["runtime"] != "provided.al2023" or f["handler"] != "bootstrap":
            r.fail(w, f"{fname}: runtime {f['runtime']} handler {f['handler']}, expected provided.al2023/bootstrap")
        for e in f["esm"]:
            if "ReportBatchItemFailures" not in e["response_types"]:
                r.fail(w, f"{fname}: event source {e['queue']} lacks FunctionResponseTypes ReportBatchItemFailures")
            if not e["max_concurrency"]:
                r.fail(w, f"{fname}: event source {e['queue']} has no ScalingConfig.MaximumConcurrency")
        if not f["log_group"]:
            r.fail(w, f"{fname}: no LoggingConfig.LogGroup (retention would not apply)")
        if any(g[1] == "*" for g in f["grants"]):
            r.fail(w, f"{fname}: a policy statement grants on Resource '*': {[g for g in f['grants'] if g[1] == '*']}")
    for fname, (reads, _unknown) in fn_reads.items():
        f = m.functions.get(fname)
        if not f:
            r.fail(w, f"functions/{fname} exists but no function {n(fname)} deploys it")
            continue
        for var, where in sorted(reads.items()):
            if var not in f["env"]:
                r.fail(w, f"{fname} reads {var} ({where[0]}) but the function does not set it")

    # Event sources: what the local runner mirrors (resources::EVENT_SOURCES) is what deploys
    wanted = {(n(q), fn) for q, fn, *_ in c.event_sources}
    for q, fn, batch, window, conc, timeout in c.event_sources:
        f = m.functions.get(fn)
        if not f:
            r.fail(w, f"EVENT_SOURCES names function {fn}, which is not deployed")
            continue
        esm = [e for e in f["esm"] if e["queue"] == n(q)]
        if not esm:
            r.fail(w, f"{fn} has no event source on {n(q)} (resources::EVENT_SOURCES)")
            continue
        e = esm[0]
        got = (e["batch"], e["window"], e["max_concurrency"], f["timeout"])
        if got != (batch, window, conc, timeout):
            r.fail(w, f"{fn} on {n(q)}: BatchSize/MaximumBatchingWindowInSeconds/MaximumConcurrency/Timeout "
                      f"{got}, resources::EVENT_SOURCES says {(batch, window, conc, timeout)}")
        if s.function_timeout.get(q) not in (None, timeout):
            r.fail(w, f"resource script times {q}'s consumer at {s.function_timeout.get(q)} s, "
                      f"resources::EVENT_SOURCES says {timeout} s")
    for fname, f in m.functions.items():
        for e in f["esm"]:
            if (e["queue"], fname) not in wanted:
                r.fail(w, f"{fname} on {e['queue']} is not in resources::EVENT_SOURCES")

    # Who monitors the monitor
    sched = [x for x in m.schedules if x["enabled"]]
    if not sched:
        r.fail(w, "no enabled schedule")
    for x in sched:
        if not re.fullmatch(r"rate\(1 minute\)", str(x["expr"])):
            r.fail(w, f"schedule {x['expr']!r}, expected 'rate(1 minute)'")
    not_running = [a for a in m.alarms if a["metric"] == "AWS/Lambda/Invocations" and a["on"] == "scheduler"]
    if not any(a["missing"] == "breaching" and a["op"] in ("LessThanThreshold",) for a in not_running):
        r.fail(w, "no 'scheduler has not run' alarm (Invocations < threshold, TreatMissingData breaching)")
    for suffix in c.queues:
        if not any(a["metric"] == "AWS/SQS/ApproximateNumberOfMessagesVisible" and a["on"] == n(suffix + c.dlq_suffix) for a in m.alarms):
            r.fail(w, f"no alarm on DLQ {n(suffix + c.dlq_suffix)} not being empty")
        if not any(a["metric"] == "AWS/SQS/ApproximateAgeOfOldestMessage" and a["on"] == n(suffix) for a in m.alarms):
            r.fail(w, f"no oldest-message age alarm on {n(suffix)}")
    for fname in m.functions:
        if not any(a["metric"] == "AWS/Lambda/Errors" and a["on"] == fname for a in m.alarms):
            r.fail(w, f"no Errors alarm for {fname}")
    for a in m.alarms:
        if not a["actions"]:
            r.fail(w, f"alarm on {a['on']} ({a['metric']}) notifies nobody")
    if not m.http_api.get("burst") or not m.http_api.get("rate"):
        r.fail(w, f"HTTP API stage has no default route throttling ({m.http_api})")


def parity(sam: Model, cdk: Model, r: Report) -> None:
    """SAM and CDK must deploy the same thing (modulo logical ids and metadata)."""
    w = "SAM vs CDK"

    def fn_view(f: dict) -> dict:
        v = {k: f[k] for k in ("runtime", "handler", "arch", "memory", "timeout", "env", "grants")}
        v["esm"] = sorted(f["esm"], key=lambda e: e["queue"])
        return v

    for fname in sorted(set(sam.functions) | set(cdk.functions)):
        if fname not in sam.functions or fname not in cdk.functions:
            r.fail(w, f"function {fname} only in {'SAM' if fname in sam.functions else 'CDK'}")
            continue
        a, b = fn_view(sam.functions[fname]), fn_view(cdk.functions[fname])
        for k in a:
            if k == "grants":
                # CDK's SqsEventSource adds sqs:GetQueueUrl, SAM's explicit statement does not need it.
                ga = {g for g in a[k] if g[0] != "sqs:GetQueueUrl"}
                gb = {g for g in b[k] if g[0] != "sqs:GetQueueUrl"}
                if ga != gb:
                    r.fail(w, f"{fname} permissions differ: only SAM {sorted(ga - gb)}, only CDK {sorted(gb - ga)}")
            elif a[k] != b[k]:
                r.fail(w, f"{fname} {k}: SAM {a[k]} vs CDK {b[k]}")
    for attr in ("queues", "tables"):
        x, y = getattr(sam, attr), getattr(cdk, attr)
        for k in sorted(set(x) | set(y)):
            if x.get(k) != y.get(k):
                r.fail(w, f"{attr[:-1]} {k}: SAM {x.get(k)} vs CDK {y.get(k)}")
    key = lambda s: (s["topic"], s["queue"], json.dumps(s["filter"], sort_keys=True), s["raw"], s["scope"])  # noqa: E731
    if sorted(map(key, sam.subscriptions)) != sorted(map(key, cdk.subscriptions)):
        r.fail(w, f"subscriptions differ: SAM {sorted(map(key, sam.subscriptions))} vs CDK {sorted(map(key, cdk.subscriptions))}")
    if sorted(sam.topics) != sorted(cdk.topics):
        r.fail(w, f"topics differ: SAM {sorted(sam.topics)} vs CDK {sorted(cdk.topics)}")
    akey = lambda a: (a["metric"], str(a["on"]), a["op"], a["threshold"], a["missing"], a["periods"], a["period"])  # noqa: E731
    if sorted(map(akey, sam.alarms)) != sorted(map(akey, cdk.alarms)):
        sa, ca = set(map(akey, sam.alarms)), set(map(akey, cdk.alarms))
        r.fail(w, f"alarms differ: only SAM {sorted(sa - ca)}, only CDK {sorted(ca - sa)}")
    sk = lambda m: sorted((x["expr"], tuple(x["targets"])) for x in m.schedules)  # noqa: E731
    if sk(sam) != sk(cdk):
        r.fail(w, f"schedules differ: SAM {sk(sam)} vs CDK {sk(cdk)}")
    ha = {k: sam.http_api.get(k) for k in ("burst", "rate", "access_logs")}
    hb = {k: cdk.http_api.get(k) for k in ("burst", "rate", "access_logs")}
    if ha != hb:
        r.fail(w, f"HTTP API stage differs: SAM {ha} vs CDK {hb}")


# ------------------------------------------------------------------------------------------------
# SAM translation (offline)


def translate_sam(path: Path) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import logging
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "unpublished metrics" noise
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(path.read_text())
    sam = copy.deepcopy(template)
    for lid, res in sam.get("Resources", {}).items():
        props = res.get("Properties", {})
        # Local CodeUri paths are uploaded by `sam package`; the translator only accepts S3 URIs.
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str) \
                and not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = f"s3://offline-translation/{lid}.zip"

    class NoManagedPolicies:  # the template names no managed policy, so no IAM lookup is needed
        def load(self) -> dict:
            return {}
    return transform(sam, {}, NoManagedPolicies())


def sam_function_dirs(path: Path) -> dict[str, tuple[str, str | None]]:
    """Function logical id -> (CodeUri, BuildProperties.Binary) from the untranslated template."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    t = yaml.load(path.read_text(), Loader=Loader)
    out = {}
    for lid, res in t.get("Resources", {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            bp = (res.get("Metadata") or {}).get("BuildProperties") or {}
            out[lid] = (res["Properties"].get("CodeUri"), bp.get("Binary"))
    return out


# ------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--template", type=Path, help="SAM template (default REPO/infra/template.yaml)")
    ap.add_argument("--cdk-template", type=Path, help="synthesized CDK template JSON")
    ap.add_argument("--stage", default="dev")
    ap.add_argument("--dump", action="store_true", help="print the normalised models as JSON")
    args = ap.parse_args(argv)
    repo = args.repo.resolve()
    template = args.template or repo / "infra/template.yaml"

    contract = parse_resources_rs(repo / "crates/netmon-aws/src/resources.rs")
    script = parse_resource_script(repo / "localstack/init/ready.d/netmon-resources.sh")
    r = Report()
    check_script_vs_contract(contract, script, r)

    # Functions in the tree and what they read
    fn_root = repo / "functions"
    fn_reads: dict[str, tuple[dict, list]] = {}
    if fn_root.is_dir():
        for d in sorted(p for p in fn_root.iterdir() if (p / "Cargo.toml").is_file()):
            reads, unknown = function_env_reads(d, contract)
            fn_reads[d.name] = (reads, unknown)
            for u in unknown:
                r.fail("functions", u)
            pkg = re.search(r'^name\s*=\s*"([^"]+)"', (d / "Cargo.toml").read_text(), re.M)
            if pkg and pkg.group(1) != f"netmon-fn-{d.name}":
                r.fail("functions", f"functions/{d.name}/Cargo.toml package is {pkg.group(1)!r}, expected 'netmon-fn-{d.name}'")

    try:
        sam_cfn = translate_sam(template)
    except Exception as e:  # the translator's own message names the resource
        print(f"FAIL: SAM translation of {template} failed: {e}", file=sys.stderr)
        return 1
    sam = build_model("SAM template", Cfn(sam_cfn, {"Stage": args.stage}), args.stage)
    check_model(sam, contract, script, {k: v for k, v in fn_reads.items()}, r)
    for lid, (code_uri, binary) in sam_function_dirs(template).items():
        name = next((k for k, f in sam.functions.items() if f["logical"] == lid), None)
        if name is None:
            continue
        if code_uri != f"../functions/{name}":
            r.fail("SAM template", f"{lid} CodeUri {code_uri!r}, expected '../functions/{name}'")
        if binary != f"netmon-fn-{name}":
            r.fail("SAM template", f"{lid} BuildProperties.Binary {binary!r}, expected 'netmon-fn-{name}'")
        if sam.functions[name]["metadata"].get("BuildMethod") != "rust-cargolambda":
            r.fail("SAM template", f"{lid} Metadata.BuildMethod is not rust-cargolambda")

    models = [sam]
    if args.cdk_template:
        cdk_cfn = json.loads(args.cdk_template.read_text())
        cdk = build_model("CDK synth", Cfn(cdk_cfn, {}), args.stage)
        check_model(cdk, contract, script, fn_reads, r)
        parity(sam, cdk, r)
        models.append(cdk)

    if args.dump:
        for x in models:
            print(json.dumps({"label": x.label, "functions": x.functions, "queues": x.queues, "tables": x.tables,
                              "subscriptions": x.subscriptions, "queue_senders": {k: sorted(v) for k, v in x.queue_senders.items()},
                              "schedules": x.schedules, "alarms": x.alarms, "http_api": x.http_api}, indent=1, default=list))
    deployed = set(sam.functions)
    missing = sorted(deployed - set(fn_reads))
    if missing:
        r.note("functions not written yet (no functions/<name>/Cargo.toml), env check skipped for: "
               + ", ".join(missing) + " - the check picks them up as soon as they land")
    for name, (reads, _) in sorted(fn_reads.items()):
        r.note(f"{name} reads: {', '.join(sorted(reads)) or '(no NETMON_* variables found)'}")

    print(f"drift check: {len(contract.queues)} queues, {len(contract.topics)} topics, {len(contract.tables)} tables, "
          f"{len(contract.subscriptions)} subscriptions from resources.rs; models: {', '.join(x.label for x in models)}; "
          f"functions in tree: {', '.join(sorted(fn_reads)) or 'none'}")
    for n in r.notes:
        print(f"note: {n}")
    for f in r.failures:
        print(f"DRIFT {f}")
    if r.failures:
        print(f"drift check FAILED: {len(r.failures)} finding(s)")
        return 1
    print("drift check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
