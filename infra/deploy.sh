#!/usr/bin/env bash
# Deploys fmn to AWS: builds the Lambda zips with cargo-lambda, uploads them to
# S3 under a content-hash prefix (so CloudFormation sees new code as a change),
# uploads infra/template.yaml next to them (it is over CloudFormation's 51,200-byte
# limit for an inline template) and creates or updates the stack from that S3 copy.
#
# Usage: infra/deploy.sh            (from anywhere; AWS credentials as for the aws CLI)
#
# Environment (all optional):
#   STACK                       stack name (default: fmn)
#   CODE_BUCKET                 S3 bucket for the zips (default: fmn-code-<account>-<region>,
#                               created if missing)
#   SENDER_ADDRESS              From address of notification email; must be a verified
#                               SES identity (default: the template's, notifications@fmn.example.org)
#   LOG_LEVEL                   trace|debug|info|warn|error (default: the template's, info)
#   EVENT_SOURCE_MAPPINGS_ENABLED  "false" pauses queue consumption (default: "true")
#   LINK_SECRET_PARAMETER       SSM SecureString parameter holding the link secret (default:
#                               /fmn/<stack>/link-secret, created with 48 random bytes if missing)
#   ALERT_EMAIL                 address subscribed to the alarms' SNS topic
#   SKIP_BUILD=1                upload the zips already in $LAMBDA_DIR instead of building
#   LAMBDA_DIR                  where the zips are, <binary>/bootstrap.zip (default: target/lambda,
#                               where cargo-lambda puts them)
#   CARGO_LAMBDA_COMPILER       cargo-lambda backend (default: cargo; "zig" cross-links
#                               against an older glibc if your build host is too new)
#   AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL ...  honoured by the aws CLI as usual
#
# Uses the project venv's aws and cargo-lambda (localstack/bootstrap.sh installs them)
# when present, otherwise the ones on PATH. Prints the stack outputs when done.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stack="${STACK:-fmn}"
template="infra/template.yaml"
# package -> binary; the binary's zip lands in target/lambda/<binary>/bootstrap.zip
# and is uploaded as <prefix><name>.zip, the key the template expects.
packages=(fmn-matcher-fn fmn-email-sender-fn fmn-irc-sender-fn fmn-matrix-sender-fn
  fmn-webhook-sender-fn fmn-push-sender-fn fmn-inbox-sender-fn fmn-websocket-fn fmn-feed-writer-fn fmn-digest-fn fmn-ownership-sync-fn fmn-preferences-snapshot-fn fmn-api-fn)
binaries=(fmn-matcher fmn-email-sender fmn-irc-sender fmn-matrix-sender
  fmn-webhook-sender fmn-push-sender fmn-inbox-sender fmn-websocket fmn-feed-writer fmn-digest fmn-ownership-sync fmn-preferences-snapshot fmn-api)
names=(matcher email-sender irc-sender matrix-sender
  webhook-sender push-sender inbox-sender websocket feed-writer digest ownership-sync preferences-snapshot api)

tool() { # NAME: the venv's copy if present, else PATH's
  if [ -x "$root/.venv/bin/$1" ]; then echo "$root/.venv/bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
  else echo "deploy: $1 not found (run localstack/bootstrap.sh)" >&2; exit 1
  fi
}
aws_bin="$(tool aws)"
aws() { "$aws_bin" "$@"; }
if [ -x "$root/.venv/bin/python3" ]; then py="$root/.venv/bin/python3"; else py="python3"; fi

# --- 1. build ----------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo_lambda="$(tool cargo-lambda)"
  pkg_args=()
  for p in "${packages[@]}"; do pkg_args+=(--package "$p"); done
  echo "deploy: building ${packages[*]}" >&2
  # x86_64 to match the functions' Architectures in the template.
  "$cargo_lambda" lambda build --release --x86-64 --lambda-dir "${LAMBDA_DIR:-target/lambda}" \
    --compiler "${CARGO_LAMBDA_COMPILER:-cargo}" --output-format zip "${pkg_args[@]}"
fi

zips=()
for b in "${binaries[@]}"; do
  z="${LAMBDA_DIR:-target/lambda}/$b/bootstrap.zip"
  [ -f "$z" ] || { echo "deploy: $z missing (build failed, or SKIP_BUILD without a build)" >&2; exit 1; }
  zips+=("$z")
done

# provided.al2023 ships glibc 2.34. `--compiler cargo` links against the build
# host's glibc, so refuse a binary that needs newer symbol versions: it would
# only fail at cold start, with "GLIBC_2.3x not found".
"$py" - "${zips[@]}" <<'EOF'
import re, sys, zipfile
bad = []
for path in sys.argv[1:]:
    data = zipfile.ZipFile(path).read("bootstrap")
    versions = {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(2\.\d+)", data)}
    newest = max(versions, default=(2, 0))
    if newest > (2, 34):
        bad.append(f"{path} needs GLIBC_{newest[0]}.{newest[1]} (> 2.34 on provided.al2023)")
if bad:
    sys.exit("deploy: " + "; ".join(bad) + "\ndeploy: build on an older host, or with CARGO_LAMBDA_COMPILER=zig")
EOF

# --- 2. upload under a content-hash prefix -----------------------------------
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}"
[ -n "$region" ] || { echo "deploy: no region (set AWS_REGION)" >&2; exit 1; }
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
if [ -z "${CODE_BUCKET:-}" ]; then
  account="$(aws sts get-caller-identity --query Account --output text)"
  CODE_BUCKET="fmn-code-$account-$region"
fi
if ! aws s3api head-bucket --bucket "$CODE_BUCKET" >/dev/null 2>&1; then
  echo "deploy: creating bucket s3://$CODE_BUCKET" >&2
  aws s3 mb "s3://$CODE_BUCKET" --region "$region" >/dev/null
fi

hash="$(cat "${zips[@]}" | sha256sum | cut -c1-16)"
prefix="fmn/$hash/"
for i in "${!binaries[@]}"; do
  aws s3 cp --only-show-errors "${zips[$i]}" "s3://$CODE_BUCKET/$prefix${names[$i]}.zip"
done
echo "deploy: code at s3://$CODE_BUCKET/$prefix" >&2

# --- 3. create or update the stack, from the template in S3 ----------------
# The template (over CloudFormation's 51,200-byte limit for an inline body) goes
# next to the code and is passed as a TemplateURL (limit 1 MB). create-stack /
# update-stack rather than `aws cloudformation deploy`: the same calls on AWS,
# LocalStack and moto (moto gives stacks made through change sets no outputs).
template_key="${prefix}template-$(sha256sum "$template" | cut -c1-16).yaml"
aws s3 cp --only-show-errors "$template" "s3://$CODE_BUCKET/$template_key"
# Virtual-hosted form: AWS, LocalStack and moto (which maps it to its own S3) all read it.
template_url="https://$CODE_BUCKET.s3.$region.amazonaws.com/$template_key"
echo "deploy: template at $template_url" >&2

# The link secret lives in SSM as a SecureString, never in the template or the functions'
# environment; a random one is made on the first deploy (crates/fmn-lambda/src/secrets.rs).
link_param="${LINK_SECRET_PARAMETER:-/fmn/$stack/link-secret}"
if ! aws ssm get-parameter --name "$link_param" --query Parameter.Name --output text >/dev/null 2>&1; then
  echo "deploy: creating the link secret $link_param (SSM SecureString, 48 random bytes)" >&2
  aws ssm put-parameter --name "$link_param" --type SecureString \
    --value "$("$py" -c 'import secrets; print(secrets.token_urlsafe(48))')" >/dev/null
fi

declare -A given=([CodeBucket]="$CODE_BUCKET" [CodePrefix]="$prefix" [LinkSecretParameter]="$link_param")
[ -z "${ALERT_EMAIL:-}" ] || given[AlertEmail]="$ALERT_EMAIL"
[ -z "${SENDER_ADDRESS:-}" ] || given[SenderAddress]="$SENDER_ADDRESS"
[ -z "${LOG_LEVEL:-}" ] || given[LogLevel]="$LOG_LEVEL"
[ -z "${EVENT_SOURCE_MAPPINGS_ENABLED:-}" ] || given[EventSourceMappingsEnabled]="$EVENT_SOURCE_MAPPINGS_ENABLED"

status="$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].StackStatus' --output text 2>/dev/null || true)"
params=()
for k in "${!given[@]}"; do params+=("ParameterKey=$k,ParameterValue=${given[$k]}"); done
if [ -n "$status" ] && [ "$status" != None ] && [ "$status" != REVIEW_IN_PROGRESS ]; then
  # An update keeps every parameter this script does not set (like `deploy` does):
  # secrets and settings an operator gave before stay as they are.
  # Only parameters the new template still declares (a renamed one, such as LinkSecret
  # becoming LinkSecretParameter, would fail the update).
  declared=" $(awk '/^Parameters:/{on=1; next} /^[A-Za-z]/{on=0} on && /^  [A-Za-z0-9]+:$/{sub(":",""); printf "%s ", $1}' "$template") "
  for k in $(aws cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].Parameters[].ParameterKey' --output text); do
    [ -n "${given[$k]+x}" ] || [[ "$declared" != *" $k "* ]] || params+=("ParameterKey=$k,UsePreviousValue=true")
  done
  echo "deploy: updating stack $stack ($status)" >&2
  if ! out="$(aws cloudformation update-stack --stack-name "$stack" --template-url "$template_url" \
    --capabilities CAPABILITY_IAM --parameters "${params[@]}" 2>&1)"; then
    if grep -q "No updates are to be performed" <<<"$out"; then
      echo "deploy: stack $stack is up to date" >&2
    else
      echo "$out" >&2; exit 1
    fi
  else
    aws cloudformation wait stack-update-complete --stack-name "$stack"
  fi
else
  echo "deploy: creating stack $stack" >&2
  aws cloudformation create-stack --stack-name "$stack" --template-url "$template_url" \
    --capabilities CAPABILITY_IAM --parameters "${params[@]}" >/dev/null
  aws cloudformation wait stack-create-complete --stack-name "$stack"
fi

aws cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
