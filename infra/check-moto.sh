#!/usr/bin/env bash
# Deploys infra/template.yaml to a running moto server (or LocalStack) and
# checks the result: every output present, queues with their redrive policy,
# tables with their keys and TTL, both event source mappings (disabled, with
# BatchSize and FunctionResponseTypes), the functions' environment, and that a
# message sent to the incoming queue stays there (the emulator does not try to
# run the matcher on it).
#
# Usage: infra/check-moto.sh ENDPOINT_URL        e.g. http://127.0.0.1:5077
# Env:   STACK   stack name (default: fmn-check-<pid>)
#        KEEP=1  leave the stack and code bucket in place afterwards
# Uses dummy credentials (test/test) and region us-east-1 unless already set.
# Exits non-zero, naming the failed check, on the first failure.
set -euo pipefail

if [ $# -ne 1 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
endpoint="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="$root/infra/template.yaml"
stack="${STACK:-fmn-check-$$}"
bucket="fmn-check-code-$$-$RANDOM"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_PAGER=""

if [ -x "$root/.venv/bin/aws" ]; then aws_bin="$root/.venv/bin/aws"; else aws_bin="aws"; fi
if [ -x "$root/.venv/bin/python3" ]; then py="$root/.venv/bin/python3"; else py="python3"; fi
aws() { "$aws_bin" --endpoint-url "$endpoint" --output json "$@"; }

fail() { echo "check-moto: FAIL: $*" >&2; exit 1; }
ok() { echo "check-moto: ok: $*"; }
# jget JSON PYTHON-EXPR: evaluates EXPR with `d` bound to the parsed JSON.
jget() { "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

work="$(mktemp -d)"
cleanup() {
  rc=$?
  if [ "${KEEP:-0}" != 1 ]; then
    aws cloudformation delete-stack --stack-name "$stack" >/dev/null 2>&1 || true
    aws s3 rm "s3://$bucket" --recursive >/dev/null 2>&1 || true
    aws s3api delete-bucket --bucket "$bucket" >/dev/null 2>&1 || true
  else
    echo "check-moto: kept stack $stack and bucket $bucket"
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# --- code bucket with placeholder zips (a zip holding a file named bootstrap)
# every zip the template names (${CodePrefix}<name>.zip)
names="$(grep -o '\${CodePrefix}[A-Za-z0-9_-]*\.zip' "$template" | sed 's/.*}//; s/\.zip$//' | sort -u)"
"$py" - "$work" $names <<'EOF'
import sys, zipfile
for name in sys.argv[2:]:
    with zipfile.ZipFile(f"{sys.argv[1]}/{name}.zip", "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho placeholder\n")
EOF
aws s3api create-bucket --bucket "$bucket" >/dev/null
prefix="check/"
for name in $names; do
  aws s3 cp --only-show-errors "$work/$name.zip" "s3://$bucket/${prefix}$name.zip"
done
ok "uploaded placeholder zips to s3://$bucket/$prefix"
# The template goes through S3 as it does on every deploy path (it is over the 51,200-byte
# limit for an inline body, which localstack/moto_server.py enforces as AWS does).
aws s3 cp --only-show-errors "$template" "s3://$bucket/${prefix}template.yaml"

# --- create the stack, mappings disabled as the local runtime deploys it
aws cloudformation create-stack --stack-name "$stack" \
  --template-url "https://$bucket.s3.amazonaws.com/${prefix}template.yaml" \
  --capabilities CAPABILITY_IAM \
  --parameters \
    ParameterKey=CodeBucket,ParameterValue="$bucket" \
    ParameterKey=CodePrefix,ParameterValue="$prefix" \
    ParameterKey=EventSourceMappingsEnabled,ParameterValue=false \
    ParameterKey=LinkSecretParameter,ParameterValue="/$stack/link-secret" >/dev/null
status=""
for _ in $(seq 1 120); do
  status="$(aws cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].StackStatus' --output text)"
  case "$status" in
    *_IN_PROGRESS) sleep 1 ;;
    *) break ;;
  esac
done
if [ "$status" != CREATE_COMPLETE ]; then
  aws cloudformation describe-stack-events --stack-name "$stack" \
    --query 'StackEvents[?contains(ResourceStatus, `FAILED`)].[LogicalResourceId,ResourceStatusReason]' \
    --output text >&2 || true
  fail "stack $stack ended in $status"
fi
ok "stack $stack CREATE_COMPLETE"

# --- outputs
outputs="$(aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs')"
out() { jget "$outputs" "{o['OutputKey']: o['OutputValue'] for o in d}.get('$1', '')"; }
for key in IncomingQueueUrl IncomingDeadLetterQueueUrl EmailQueueUrl EmailDeadLetterQueueUrl \
  PreferencesTableName DeliveriesTableName MatcherFunctionName EmailSenderFunctionName \
  IrcQueueUrl IrcDeadLetterQueueUrl IrcSenderFunctionName \
  MatrixQueueUrl MatrixDeadLetterQueueUrl MatrixSenderFunctionName \
  PushQueueUrl PushDeadLetterQueueUrl PushSenderFunctionName \
  InboxQueueUrl InboxDeadLetterQueueUrl InboxSenderFunctionName InboxTableName \
  ConnectionsTableName WebsocketFunctionName WebSocketUrl \
  PreferencesSnapshotFunctionName PreferencesSnapshotBucketName; do
  [ -n "$(out "$key")" ] || fail "output $key missing"
done
ok "all 24 outputs present"

# --- queues: redrive to their own DLQ after 5 receives, 60 s visibility, 14-day DLQ retention
check_queue() { # QUEUE_OUTPUT DLQ_OUTPUT
  local q dlq qa da dlq_arn
  q="$(out "$1")"; dlq="$(out "$2")"
  qa="$(aws sqs get-queue-attributes --queue-url "$q" --attribute-names All --query Attributes)"
  da="$(aws sqs get-queue-attributes --queue-url "$dlq" --attribute-names All --query Attributes)"
  dlq_arn="$(jget "$da" "d['QueueArn']")"
  [ "$(jget "$qa" "json.loads(d['RedrivePolicy'])['deadLetterTargetArn']")" = "$dlq_arn" ] \
    || fail "$1: redrive target is not $2"
  [ "$(jget "$qa" "int(json.loads(d['RedrivePolicy'])['maxReceiveCount'])")" = 5 ] \
    || fail "$1: maxReceiveCount is not 5"
  [ "$(jget "$qa" "d['VisibilityTimeout']")" = 60 ] || fail "$1: VisibilityTimeout is not 60"
  [ "$(jget "$da" "d['MessageRetentionPeriod']")" = 1209600 ] || fail "$2: retention is not 14 days"
  ok "$1 redrives to $2 after 5 receives; visibility 60 s; DLQ keeps 14 days"
}
check_queue IncomingQueueUrl IncomingDeadLetterQueueUrl
check_queue EmailQueueUrl EmailDeadLetterQueueUrl
check_queue InboxQueueUrl InboxDeadLetterQueueUrl

# --- tables
prefs="$(aws dynamodb describe-table --table-name "$(out PreferencesTableName)" --query Table)"
[ "$(jget "$prefs" "sorted((k['AttributeName'], k['KeyType']) for k in d['KeySchema'])")" \
  = "[('pk', 'HASH'), ('sk', 'RANGE')]" ] || fail "preferences table keys"
[ "$(jget "$prefs" "sorted((a['AttributeName'], a['AttributeType']) for a in d['AttributeDefinitions'])")" \
  = "[('pk', 'S'), ('sk', 'S')]" ] || fail "preferences table key types"
ok "preferences table: pk (S, HASH) + sk (S, RANGE)"
deliveries_name="$(out DeliveriesTableName)"
deliv="$(aws dynamodb describe-table --table-name "$deliveries_name" --query Table)"
[ "$(jget "$deliv" "[(k['AttributeName'], k['KeyType']) for k in d['KeySchema']]")" \
  = "[('pk', 'HASH')]" ] || fail "deliveries table keys"
ttl="$(aws dynamodb describe-time-to-live --table-name "$deliveries_name" --query TimeToLiveDescription)"
if [ "$(jget "$ttl" "(d.get('AttributeName'), d.get('TimeToLiveStatus'))")" = "('expires_at', 'ENABLED')" ]; then
  ok "deliveries table: pk (S, HASH), TTL on expires_at"
elif [ "$(jget "$ttl" "d.get('TimeToLiveStatus')")" = DISABLED ] \
  && curl -fsS -o /dev/null "$endpoint/moto-api/" 2>/dev/null; then
  # moto quirk: its CloudFormation ignores TimeToLiveSpecification (as of moto
  # 5.2). Accept that on moto only, provided the template declares it.
  [ "$("$py" -c 'import re,sys; t=open(sys.argv[1]).read(); print(bool(re.search(r"TimeToLiveSpecification:\s*\n\s*AttributeName: expires_at", t)))' "$template")" = True ] \
    || fail "template does not declare TTL on expires_at"
  ok "deliveries table: pk (S, HASH); TTL on expires_at declared (moto's CloudFormation does not apply it)"
else
  fail "deliveries table TTL: $ttl"
fi

# --- functions: runtime and exactly the documented environment variables
check_function() { # FUNCTION_OUTPUT EXPECTED_SORTED_VARS MEMORY_MB
  local cfg
  cfg="$(aws lambda get-function-configuration --function-name "$(out "$1")")"
  [ "$(jget "$cfg" "(d['Runtime'], d['Handler'], d['Timeout'], d['MemorySize'])")" \
    = "('provided.al2023', 'bootstrap', 10, $3)" ] || fail "$1: runtime/handler/timeout/memory"
  [ "$(jget "$cfg" "' '.join(sorted(d['Environment']['Variables']))")" = "$2" ] \
    || fail "$1: environment is $(jget "$cfg" "sorted(d['Environment']['Variables'])")"
  ok "$1: provided.al2023, 10 s, $3 MB, env $2"
}
check_function MatcherFunctionName "FMN_API_TABLE FMN_EMAIL_QUEUE_URL FMN_FEED_QUEUE_URL FMN_INBOX_QUEUE_URL FMN_IRC_QUEUE_URL FMN_MATRIX_QUEUE_URL FMN_OWNERSHIP_TABLE FMN_PREFERENCES_SNAPSHOT_BUCKET FMN_PREFERENCES_TABLE FMN_PUSH_QUEUE_URL FMN_QUARANTINE_QUEUE_URL FMN_WEBHOOK_QUEUE_URL RUST_LOG" 512
check_function InboxSenderFunctionName "FMN_API_BASE_URL FMN_CONNECTIONS_TABLE FMN_DELIVERIES_TABLE FMN_INBOX_TABLE FMN_SOCKET_ENDPOINT RUST_LOG" 256
check_function WebsocketFunctionName "FMN_API_BASE_URL FMN_API_TABLE FMN_CONNECTIONS_TABLE RUST_LOG" 128
check_function EmailSenderFunctionName "FMN_API_BASE_URL FMN_DELIVERIES_TABLE FMN_FLOOD_MAX FMN_FLOOD_WINDOW_SECS FMN_HELD_TABLE FMN_LINK_SECRET_SSM_PARAMETER FMN_PREFERENCES_TABLE FMN_SENDER_ADDRESS RUST_LOG" 256

# The preferences snapshot: a scheduled function with room for a large index, and its bucket.
cfg="$(aws lambda get-function-configuration --function-name "$(out PreferencesSnapshotFunctionName)")"
[ "$(jget "$cfg" "(d['Timeout'], d['MemorySize'], ' '.join(sorted(d['Environment']['Variables'])))")" \
  = "(300, 2048, 'FMN_PREFERENCES_SNAPSHOT_BUCKET FMN_PREFERENCES_TABLE RUST_LOG')" ] \
  || fail "PreferencesSnapshotFunctionName: timeout/memory/environment $(jget "$cfg" "(d['Timeout'], d['MemorySize'], sorted(d['Environment']['Variables']))")"
aws s3api head-bucket --bucket "$(out PreferencesSnapshotBucketName)" >/dev/null \
  || fail "PreferencesSnapshotBucketName: no such bucket"
ok "PreferencesSnapshotFunctionName: 300 s, 2048 MB, its bucket exists"

# --- event source mappings: present, disabled, batch size 10, partial batch failures
check_mapping() { # FUNCTION_OUTPUT QUEUE_OUTPUT BATCH WINDOW
  local fn qa arn esms
  fn="$(out "$1")"
  qa="$(aws sqs get-queue-attributes --queue-url "$(out "$2")" --attribute-names QueueArn --query Attributes)"
  arn="$(jget "$qa" "d['QueueArn']")"
  esms="$(aws lambda list-event-source-mappings --function-name "$fn" --query EventSourceMappings)"
  [ "$(jget "$esms" "len([m for m in d if m['EventSourceArn'] == '$arn'])")" = 1 ] \
    || fail "$1: no event source mapping from $2"
  [ "$(jget "$esms" "[(m['BatchSize'], m.get('MaximumBatchingWindowInSeconds', 0), m.get('FunctionResponseTypes')) for m in d][0]")" \
    = "($3, $4, ['ReportBatchItemFailures'])" ] \
    || fail "$1: mapping settings $(jget "$esms" "d[0]")"
  [ "$(jget "$esms" "d[0]['State']")" = Disabled ] || fail "$1: mapping is not Disabled"
  ok "$1 <- $2: BatchSize $3, window $4 s, ReportBatchItemFailures, Disabled"
}
check_mapping MatcherFunctionName IncomingQueueUrl 10 1
check_mapping EmailSenderFunctionName EmailQueueUrl 10 1
check_mapping IrcSenderFunctionName IrcQueueUrl 10 0
check_mapping MatrixSenderFunctionName MatrixQueueUrl 10 0
check_mapping PushSenderFunctionName PushQueueUrl 10 0
check_mapping InboxSenderFunctionName InboxQueueUrl 10 0
check_mapping FeedWriterFunctionName FeedQueueUrl 10 1

# --- alarms: every alarm of the template deployed, notifying the alerts topic
topic="$(out AlertsTopicArn)"
want="$(grep -c 'Type: AWS::CloudWatch::Alarm' "$template")"
alarms="$(aws cloudwatch describe-alarms --query MetricAlarms)"
got="$(jget "$alarms" "len([a for a in d if '$topic' in a.get('AlarmActions', [])])")"
[ "$got" = "$want" ] || fail "alarms notifying $topic: $got, the template declares $want"
ok "$got alarms deployed, each notifying the AlertsTopicArn output"

# --- a message sent to the incoming queue is not consumed by the emulator
incoming="$(out IncomingQueueUrl)"
body="check-moto $$ $RANDOM"
aws sqs send-message --queue-url "$incoming" --message-body "$body" >/dev/null
got="$(aws sqs receive-message --queue-url "$incoming" --wait-time-seconds 2 \
  --attribute-names ApproximateReceiveCount --query 'Messages[0]')"
[ "$got" != null ] || fail "message sent to IncomingQueue was consumed (an enabled mapping?)"
[ "$(jget "$got" "d['Body']")" = "$body" ] || fail "received another message: $got"
[ "$(jget "$got" "d['Attributes']['ApproximateReceiveCount']")" = 1 ] \
  || fail "message was received before us: $got"
aws sqs delete-message --queue-url "$incoming" --receipt-handle "$(jget "$got" "d['ReceiptHandle']")"
ok "SendMessage to IncomingQueue: received back intact, first receive"

echo "check-moto: all checks passed against $endpoint (stack $stack)"
