#!/usr/bin/env bash
# Creates netmon's queues, dead-letter queues, topics, subscriptions and tables with the AWS CLI,
# exactly as infra/contract.json declares them (generated from crates/netmon-aws/src/resources.rs;
# this script holds no names or settings of its own). One script for three places:
#   * moto (tests):       AWS_ENDPOINT_URL=http://127.0.0.1:PORT NETMON_PREFIX=t1 ./netmon-resources.sh --env-file out.env
#   * LocalStack:         mounted as an init hook in /etc/localstack/init/ready.d (uses awslocal;
#                         localstack/docker-compose.yml mounts the contract and sets NETMON_CONTRACT)
#   * a scratch account:  plain `aws` with your credentials (prefer infra/ for real deployments)
# Re-running is safe. Needs bash, python3 (to read the contract) and the AWS CLI.
#
# Environment:
#   NETMON_PREFIX              name prefix (default netmon-dev)
#   NETMON_CONTRACT            the contract file (default infra/contract.json of this repository)
#   NETMON_VISIBILITY_TIMEOUT  override every queue's visibility timeout in seconds (tests use 2)
#   NETMON_MAX_RECEIVE_COUNT   override every queue's deliveries before a message moves to its DLQ
set -euo pipefail

prefix="${NETMON_PREFIX:-netmon-dev}"
env_file=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --env-file) env_file="$2"; shift 2 ;;
    *) echo "usage: $0 [--env-file FILE]" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "$0")" && pwd)"
contract="${NETMON_CONTRACT:-$here/../../../infra/contract.json}"
if [[ ! -r "$contract" ]]; then
  echo "netmon-resources: no contract at $contract (set NETMON_CONTRACT to infra/contract.json)" >&2
  exit 2
fi
if [[ -n "${AWS_CLI:-}" ]]; then
  read -r -a aws <<< "$AWS_CLI"
elif [[ -z "${AWS_ENDPOINT_URL:-}" ]] && command -v awslocal >/dev/null 2>&1; then
  aws=(awslocal)                      # inside LocalStack
elif [[ -x "$here/../../../.venv/bin/aws" ]]; then
  aws=("$here/../../../.venv/bin/aws") # the project's pinned CLI
else
  aws=(aws)
fi
# awscli v1 does not apply AWS_ENDPOINT_URL to every service (SQS ignores it): pass it explicitly.
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then aws+=(--endpoint-url "$AWS_ENDPOINT_URL"); fi
export AWS_PAGER=""

# Background jobs report failure through `finish`, so one failed call fails the script.
pids=()
finish() {
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  pids=()
  if (( failed )); then echo "netmon-resources: a step failed (see above)" >&2; exit 1; fi
}
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
export AWS_DEFAULT_REGION="$region"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The contract as one tab-separated line per resource, with the prefix and overrides applied and
# every JSON argument the CLI takes already built:
#   table  NAME  ENV  CREATE_TABLE_JSON  TTL_ATTRIBUTE
#   topic  SUFFIX  NAME  ENV
#   queue  SUFFIX  NAME  ENV  QUEUE_ATTRIBUTES_JSON(without RedrivePolicy)  MAX_RECEIVE  DLQ_NAME  DLQ_ENV  DLQ_ATTRIBUTES_JSON
#   subscription  TOPIC_SUFFIX  QUEUE_SUFFIX  SUBSCRIBE_ATTRIBUTES_JSON
python3 - "$contract" "$prefix" "${NETMON_VISIBILITY_TIMEOUT:-}" "${NETMON_MAX_RECEIVE_COUNT:-}" > "$tmp/plan" <<'PY'
import json, sys

path, prefix, visibility, max_receive = sys.argv[1:5]
c = json.load(open(path))
if c.get("version") != 1:
    sys.exit(f"netmon-resources: {path} has contract version {c.get('version')!r}; this script reads version 1")
name = lambda suffix: f"{prefix}-{suffix}"
dumps = lambda v: json.dumps(v, separators=(",", ":"))
key = lambda k, kind: {"AttributeName": k["name"], "KeyType": kind}

for t in c["tables"]:
    attrs = {}
    for k in [t["partition_key"], t["sort_key"]] + [k for i in t["indexes"] for k in (i["partition_key"], i["sort_key"])]:
        attrs[k["name"]] = k["type"]
    spec = {
        "TableName": name(t["suffix"]),
        "BillingMode": t["billing_mode"],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": ty} for a, ty in attrs.items()],
        "KeySchema": [key(t["partition_key"], "HASH"), key(t["sort_key"], "RANGE")],
    }
    if t["indexes"]:
        spec["GlobalSecondaryIndexes"] = [{
            "IndexName": i["name"],
            "KeySchema": [key(i["partition_key"], "HASH"), key(i["sort_key"], "RANGE")],
            "Projection": {"ProjectionType": i["projection"]},
        } for i in t["indexes"]]
    print("\t".join(["table", name(t["suffix"]), t["env"], dumps(spec), t["ttl_attribute"]]))
for t in c["topics"]:
    print("\t".join(["topic", t["suffix"], name(t["suffix"]), t["env"]]))
for q in c["queues"]:
    d = q["dead_letter_queue"]
    attrs = {"VisibilityTimeout": str(visibility or q["visibility_timeout_secs"]),
             "MessageRetentionPeriod": str(q["retention_secs"])}
    print("\t".join(["queue", q["suffix"], name(q["suffix"]), q["env"], dumps(attrs),
                     str(max_receive or d["max_receive_count"]), name(d["suffix"]), d["env"],
                     dumps({"MessageRetentionPeriod": str(d["retention_secs"])})]))
for s in c["subscriptions"]:
    attrs = {"RawMessageDelivery": "true" if s["raw_message_delivery"] else "false",
             "FilterPolicy": dumps(s["filter_policy"])}
    if s["filter_policy_scope"] != "MessageAttributes":  # the default; moto rejects the key
        attrs["FilterPolicyScope"] = s["filter_policy_scope"]
    print("\t".join(["subscription", s["topic"], s["queue"], dumps(attrs)]))
PY
rows() { awk -F'\t' -v kind="$1" '$1 == kind' "$tmp/plan" | cut -f2-; }
json_set() { # JSON OBJECT KEY VALUE -> the object with KEY set to the string VALUE
  python3 -c 'import json,sys; o=json.loads(sys.argv[1]); o[sys.argv[2]]=sys.argv[3]; print(json.dumps(o))' "$@"
}

# 1. Tables, topics and dead-letter queues, in parallel.
create_table() { # name create-table-json ttl-attribute
  if "${aws[@]}" dynamodb describe-table --table-name "$1" >/dev/null 2>&1; then return; fi
  "${aws[@]}" dynamodb create-table --cli-input-json "$2" >/dev/null
  "${aws[@]}" dynamodb update-time-to-live --table-name "$1" \
    --time-to-live-specification "Enabled=true,AttributeName=$3" >/dev/null
}
while IFS=$'\t' read -r tname _env spec ttl; do
  create_table "$tname" "$spec" "$ttl" </dev/null & pids+=($!)
done < <(rows table)
while IFS=$'\t' read -r suffix tname _env; do
  ( "${aws[@]}" sns create-topic --name "$tname" --query TopicArn --output text > "$tmp/topic-$suffix" ) </dev/null & pids+=($!)
done < <(rows topic)
while IFS=$'\t' read -r suffix _name _env _attrs _max dlq _dlq_env dlq_attrs; do
  ( url=$("${aws[@]}" sqs create-queue --queue-name "$dlq" --attributes "$dlq_attrs" --query QueueUrl --output text)
    echo "$url" > "$tmp/dlq-url-$suffix"
    "${aws[@]}" sqs get-queue-attributes --queue-url "$url" --attribute-names QueueArn \
      --query Attributes.QueueArn --output text > "$tmp/dlq-arn-$suffix" ) </dev/null & pids+=($!)
done < <(rows queue)
finish

# 2. Queues with redrive to their DLQ.
while IFS=$'\t' read -r suffix qname _env attrs max_receive _dlq _dlq_env _dlq_attrs; do
  ( redrive="{\"deadLetterTargetArn\":\"$(cat "$tmp/dlq-arn-$suffix")\",\"maxReceiveCount\":\"$max_receive\"}"
    url=$("${aws[@]}" sqs create-queue --queue-name "$qname" --attributes "$(json_set "$attrs" RedrivePolicy "$redrive")" \
      --query QueueUrl --output text)
    echo "$url" > "$tmp/url-$suffix"
    "${aws[@]}" sqs get-queue-attributes --queue-url "$url" --attribute-names QueueArn \
      --query Attributes.QueueArn --output text > "$tmp/arn-$suffix" ) </dev/null & pids+=($!)
done < <(rows queue)
finish

# 3. Subscriptions and the queue policies that let each topic deliver.
subscribe() { # topic-suffix queue-suffix attributes-json
  local topic_arn queue_arn policy
  topic_arn=$(cat "$tmp/topic-$1"); queue_arn=$(cat "$tmp/arn-$2")
  "${aws[@]}" sns subscribe --topic-arn "$topic_arn" --protocol sqs --notification-endpoint "$queue_arn" \
    --attributes "$3" --return-subscription-arn >/dev/null
  policy=$(python3 -c 'import json,sys; print(json.dumps({"Policy": json.dumps({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":sys.argv[1],"Condition":{"ArnEquals":{"aws:SourceArn":sys.argv[2]}}}]})}))' "$queue_arn" "$topic_arn")
  "${aws[@]}" sqs set-queue-attributes --queue-url "$(cat "$tmp/url-$2")" --attributes "$policy" >/dev/null
}
while IFS=$'\t' read -r topic queue attrs; do
  subscribe "$topic" "$queue" "$attrs" </dev/null & pids+=($!)
done < <(rows subscription)
finish

{
  while IFS=$'\t' read -r tname env _spec _ttl; do echo "$env=$tname"; done < <(rows table)
  while IFS=$'\t' read -r suffix _name env; do echo "$env=$(cat "$tmp/topic-$suffix")"; done < <(rows topic)
  while IFS=$'\t' read -r suffix _name env _attrs _max _dlq dlq_env _dlq_attrs; do
    echo "$env=$(cat "$tmp/url-$suffix")"
    echo "$dlq_env=$(cat "$tmp/dlq-url-$suffix")"
  done < <(rows queue)
} > "$tmp/env"
if [[ -n "$env_file" ]]; then cp "$tmp/env" "$env_file"; fi
echo "netmon resources ready (prefix $prefix):" >&2
cat "$tmp/env" >&2
