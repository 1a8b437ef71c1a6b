#!/usr/bin/env bash
# Creates netmon's queues, dead-letter queues, topics, subscriptions and tables with the AWS CLI.
# One script for three places:
#   * moto (tests):       AWS_ENDPOINT_URL=http://127.0.0.1:PORT NETMON_PREFIX=t1 ./netmon-resources.sh --env-file out.env
#   * LocalStack:         mounted as an init hook in /etc/localstack/init/ready.d (uses awslocal)
#   * a scratch account:  plain `aws` with your credentials (prefer infra/ for real deployments)
# It mirrors infra/template.yaml (the drift check in ./scripts/test compares them). Re-running is safe.
#
# Environment:
#   NETMON_PREFIX              name prefix (default netmon-dev)
#   NETMON_VISIBILITY_TIMEOUT  override every queue's visibility timeout in seconds (tests use 2)
#   NETMON_MAX_RECEIVE_COUNT   deliveries before a message moves to its DLQ (default 5)
set -euo pipefail

prefix="${NETMON_PREFIX:-netmon-dev}"
max_receive="${NETMON_MAX_RECEIVE_COUNT:-5}"
env_file=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --env-file) env_file="$2"; shift 2 ;;
    *) echo "usage: $0 [--env-file FILE]" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "$0")" && pwd)"
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

# Visibility timeout = 6 x the consuming function's timeout (AWS guidance for SQS event sources).
declare -A function_timeout=( [probe-jobs]=90 [alerter-in]=30 [recorder-in]=30 [notifier-in]=60 )
queues=(probe-jobs alerter-in recorder-in notifier-in)
topics=(probe-results incidents target-changes)

# 1. Tables, topics and dead-letter queues, in parallel.
create_table() { # name, index args...
  local name="$1"; shift
  if "${aws[@]}" dynamodb describe-table --table-name "$name" >/dev/null 2>&1; then return; fi
  "${aws[@]}" dynamodb create-table --table-name "$name" --billing-mode PAY_PER_REQUEST \
    --attribute-definitions "$@" --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
    ${GSI:+--global-secondary-indexes "$GSI"} >/dev/null
  "${aws[@]}" dynamodb update-time-to-live --table-name "$name" \
    --time-to-live-specification Enabled=true,AttributeName=ttl >/dev/null
}
GSI='[{"IndexName":"outbox-pending","KeySchema":[{"AttributeName":"gsi1pk","KeyType":"HASH"},{"AttributeName":"gsi1sk","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]' \
  create_table "$prefix-state" AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
  AttributeName=gsi1pk,AttributeType=S AttributeName=gsi1sk,AttributeType=S & pids+=($!)
create_table "$prefix-history" AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S & pids+=($!)
for t in "${topics[@]}"; do
  ( "${aws[@]}" sns create-topic --name "$prefix-$t" --query TopicArn --output text > "$tmp/topic-$t" ) & pids+=($!)
done
for q in "${queues[@]}"; do
  ( url=$("${aws[@]}" sqs create-queue --queue-name "$prefix-$q-dlq" \
      --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
    echo "$url" > "$tmp/dlq-url-$q"
    "${aws[@]}" sqs get-queue-attributes --queue-url "$url" --attribute-names QueueArn \
      --query Attributes.QueueArn --output text > "$tmp/dlq-arn-$q" ) & pids+=($!)
done
finish

# 2. Queues with redrive to their DLQ.
for q in "${queues[@]}"; do
  ( vis="${NETMON_VISIBILITY_TIMEOUT:-$(( ${function_timeout[$q]} * 6 ))}"
    redrive="{\"deadLetterTargetArn\":\"$(cat "$tmp/dlq-arn-$q")\",\"maxReceiveCount\":\"$max_receive\"}"
    attrs=$(python3 -c 'import json,sys; print(json.dumps({"VisibilityTimeout":sys.argv[1],"MessageRetentionPeriod":"345600","RedrivePolicy":sys.argv[2]}))' "$vis" "$redrive")
    url=$("${aws[@]}" sqs create-queue --queue-name "$prefix-$q" --attributes "$attrs" --query QueueUrl --output text)
    echo "$url" > "$tmp/url-$q"
    "${aws[@]}" sqs get-queue-attributes --queue-url "$url" --attribute-names QueueArn \
      --query Attributes.QueueArn --output text > "$tmp/arn-$q" ) & pids+=($!)
done
finish

# 3. Subscriptions (raw delivery + filter policy on the `type` attribute) and the queue policies
#    that let each topic deliver.
subscribe() { # topic queue types...
  local topic="$1" queue="$2"; shift 2
  local topic_arn queue_arn types policy filter attrs
  topic_arn=$(cat "$tmp/topic-$topic"); queue_arn=$(cat "$tmp/arn-$queue")
  types=$(printf '"%s",' "$@"); types="[${types%,}]"
  filter="{\"type\":$types}"
  attrs=$(python3 -c 'import json,sys; print(json.dumps({"RawMessageDelivery":"true","FilterPolicy":sys.argv[1]}))' "$filter")
  "${aws[@]}" sns subscribe --topic-arn "$topic_arn" --protocol sqs --notification-endpoint "$queue_arn" \
    --attributes "$attrs" --return-subscription-arn >/dev/null
  policy=$(python3 -c 'import json,sys; print(json.dumps({"Policy": json.dumps({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":sys.argv[1],"Condition":{"ArnEquals":{"aws:SourceArn":sys.argv[2]}}}]})}))' "$queue_arn" "$topic_arn")
  "${aws[@]}" sqs set-queue-attributes --queue-url "$(cat "$tmp/url-$queue")" --attributes "$policy" >/dev/null
}
subscribe probe-results alerter-in probe.completed & pids+=($!)
subscribe probe-results recorder-in probe.completed & pids+=($!)
subscribe incidents notifier-in incident.opened incident.resolved incident.reminder & pids+=($!)
finish

upper() { echo "$1" | tr 'a-z-' 'A-Z_'; }
{
  echo "NETMON_STATE_TABLE=$prefix-state"
  echo "NETMON_HISTORY_TABLE=$prefix-history"
  for t in "${topics[@]}"; do echo "NETMON_$(upper "$t")_TOPIC_ARN=$(cat "$tmp/topic-$t")"; done
  for q in "${queues[@]}"; do
    echo "NETMON_$(upper "$q")_QUEUE_URL=$(cat "$tmp/url-$q")"
    echo "NETMON_$(upper "$q")_DLQ_URL=$(cat "$tmp/dlq-url-$q")"
  done
} > "$tmp/env"
if [[ -n "$env_file" ]]; then cp "$tmp/env" "$env_file"; fi
echo "netmon resources ready (prefix $prefix):" >&2
cat "$tmp/env" >&2
