#!/usr/bin/env python3
"""Builds the Lambda invocation samples in events/lambda/ from the envelope samples in
events/samples/, so `sam local invoke -e`, the Runtime API tests and the contracts stay in step.
Run after changing a sample:  python3 events/lambda/generate.py"""
import hashlib
import json
import pathlib

here = pathlib.Path(__file__).resolve().parent
samples = here.parent / "samples"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def sqs_event(queue, bodies):
    records = []
    for i, body in enumerate(bodies, start=1):
        text = json.dumps(body, separators=(",", ":"))
        records.append({
            "messageId": f"00000000-0000-4000-8000-{i:012d}",
            "receiptHandle": f"sample-receipt-{queue}-{i}",
            "body": text,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1774507320000",
                "SenderId": "AIDAEXAMPLE",
                "ApproximateFirstReceiveTimestamp": "1774507320010",
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:netmon-dev-{queue}",
            "awsRegion": REGION,
        })
    return {"Records": records}


def load(name):
    return json.loads((samples / name).read_text())


job = {
    "job_id": "0192b3c4-0000-7000-8000-000000000001",
    "tenant": "default",
    "scheduled_for": "2026-03-14T09:42:00Z",
    "targets": [
        {"id": "api", "name": "Example API", "http": {"url": "http://127.0.0.1:9/health"},
         "interval": "1m", "timeout": "2s", "conditions": ["[STATUS] == 200"]},
        {"id": "db", "tcp": {"host": "127.0.0.1", "port": 9}, "interval": "1m", "timeout": "2s"},
    ],
}

# Jobs of one slot sharing a message (netmon_aws::sqs::SqsJobQueue), each of its own tenant.
bundle = [
    {"job_id": "0192b3c4-0000-7000-8000-000000000002", "tenant": "default",
     "scheduled_for": "2026-03-14T09:42:00Z", "group_level": 0,
     "targets": [{"id": "cache", "tcp": {"host": "127.0.0.1", "port": 9}, "interval": "1m",
                  "timeout": "2s"}]},
    {"job_id": "0192b3c4-0000-7000-8000-000000000003", "tenant": "acme",
     "scheduled_for": "2026-03-14T09:42:00Z", "group_level": 0,
     "targets": [{"id": "shop", "http": {"url": "http://127.0.0.1:9/"}, "interval": "1m",
                  "timeout": "2s"}]},
]

out = {
    "scheduler.json": {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-03-14T09:42:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/netmon-dev-tick"],
        "detail": {},
    },
    "prober.json": sqs_event("probe-jobs", [job, bundle]),
    "alerter.json": sqs_event("alerter-in", [load("probe.completed.json"), load("probe.completed.mixed.json")]),
    # The recorder has no event source: its schedule invokes it, and it drains recorder-in.
    "recorder.json": {
        "version": "0",
        "id": "0d4f5c2e-9b1a-4c7e-8f3d-2a6b1e9c7d40",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-03-14T09:45:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/netmon-dev-recorder-tick"],
        "detail": {},
    },
    "notifier.json": sqs_event("notifier-in", [load("incident.opened.json")]),
    "api.json": {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/healthz",
        "rawQueryString": "",
        "headers": {"accept": "*/*", "host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0"},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "requestId": "sample-request-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "14/Mar/2026:09:42:00 +0000",
            "timeEpoch": 1773481320000,
        },
        "isBase64Encoded": False,
    },
}

for name, value in out.items():
    (here / name).write_text(json.dumps(value, indent=2) + "\n")
    print(f"wrote events/lambda/{name}")
