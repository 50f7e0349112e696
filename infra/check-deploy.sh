#!/usr/bin/env bash
# Runs infra/deploy.sh end to end against a running moto server (or LocalStack) and checks
# what it did: the zips uploaded under the content-hash prefix, the template uploaded next
# to them and the stack created from that S3 copy (never inline: moto_server.py refuses
# inline templates over 51,200 bytes, as AWS does), every function running the uploaded
# code, the outputs printed; then a second run updates the stack in place and prints them
# again.
#
# Usage: infra/check-deploy.sh ENDPOINT_URL LAMBDA_DIR
#   LAMBDA_DIR holds <binary>/bootstrap.zip for the 13 functions (deploy.sh SKIP_BUILD=1 uploads
#   them). tests/run.sh puts the matcher's debug binary there and placeholders for the
#   other twelve: a cargo-lambda release build of 13 functions takes too long for CI on 2
#   cores, and moto cannot run them anyway (deploy.sh's build step is the only part not
#   exercised here).
# Env: KEEP=1 leaves the stack and bucket in place.
set -euo pipefail
if [ $# -ne 2 ]; then sed -n '2,14p' "$0" >&2; exit 2; fi
endpoint="$1"
lambda_dir="$(cd "$2" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stack="fmn-deploy-check-$$"
bucket="fmn-deploy-check-$$-$RANDOM"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ENDPOINT_URL="$endpoint" AWS_PAGER=""
if [ -x "$root/.venv/bin/aws" ]; then aws_bin="$root/.venv/bin/aws"; else aws_bin="aws"; fi
aws() { "$aws_bin" "$@"; }
fail() { echo "check-deploy: FAIL: $*" >&2; exit 1; }
ok() { echo "check-deploy: ok: $*"; }

work="$(mktemp -d)"
cleanup() {
  rc=$?
  if [ "${KEEP:-0}" != 1 ]; then
    aws cloudformation delete-stack --stack-name "$stack" >/dev/null 2>&1 || true
    aws s3 rm "s3://$bucket" --recursive >/dev/null 2>&1 || true
    aws s3api delete-bucket --bucket "$bucket" >/dev/null 2>&1 || true
    aws ssm delete-parameter --name "/fmn/$stack/link-secret" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

deploy() {
  STACK="$stack" CODE_BUCKET="$bucket" SKIP_BUILD=1 LAMBDA_DIR="$lambda_dir" \
    EVENT_SOURCE_MAPPINGS_ENABLED=false bash "$root/infra/deploy.sh"
}

# --- first run: creates the bucket and the stack
deploy >"$work/out1" 2>"$work/err1" || { cat "$work/err1" >&2; fail "deploy.sh (create) failed"; }
grep -q "deploy: creating stack $stack" "$work/err1" || fail "deploy.sh did not create the stack: $(cat "$work/err1")"
prefix="$(sed -n 's|^deploy: code at s3://[^/]*/||p' "$work/err1")"
[ -n "$prefix" ] || fail "no code prefix reported"
ok "deploy.sh created stack $stack from code at s3://$bucket/$prefix"

# outputs printed: every output of the template, with a value
expected="$(sed -n '/^Outputs:/,$p' "$root/infra/template.yaml" | grep -cE '^  [A-Za-z0-9]+:$')"
printed="$(awk -F'\t' 'NF == 2 && $2 != "" && $2 != "None"' "$work/out1" | wc -l)"
[ "$printed" = "$expected" ] || { cat "$work/out1" >&2; fail "printed $printed outputs, the template has $expected"; }
ok "deploy.sh printed all $expected outputs"

# the link secret: made once, a random SecureString in SSM, named in the functions' environment
secret() { aws ssm get-parameter --name "/fmn/$stack/link-secret" --with-decryption \
  --query 'Parameter.[Type,Value]' --output text; }
link1="$(secret)" || fail "no link secret /fmn/$stack/link-secret in SSM"
[ "$(cut -f1 <<<"$link1")" = SecureString ] || fail "link secret is not a SecureString: $(cut -f1 <<<"$link1")"
[ "$(cut -f2 <<<"$link1" | tr -d '\n' | wc -c)" -ge 32 ] || fail "link secret shorter than 32 bytes"
ok "deploy.sh made the link secret /fmn/$stack/link-secret (SecureString, random)"

# the template went through S3, under the same prefix
template_key="$(aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix" \
  --query 'Contents[?ends_with(Key, `.yaml`)].Key' --output text)"
[ -n "$template_key" ] && [ "$template_key" != None ] || fail "no template under s3://$bucket/$prefix"
aws s3 cp --only-show-errors "s3://$bucket/$template_key" "$work/template.yaml"
cmp -s "$work/template.yaml" "$root/infra/template.yaml" || fail "uploaded template differs"
ok "template ($(wc -c <"$root/infra/template.yaml") bytes) uploaded to s3://$bucket/$template_key"

# every function runs the uploaded zip (CodeSha256 is base64 of the zip's SHA-256)
outputs="$(cat "$work/out1")"
n=0
for b in "$lambda_dir"/*/bootstrap.zip; do
  bin="$(basename "$(dirname "$b")")"               # fmn-email-sender
  name="${bin#fmn-}"                                # email-sender
  key="$(sed -E 's/(^|-)([a-z])/\U\2/g' <<<"$name")FunctionName"   # EmailSenderFunctionName
  fn="$(awk -F'\t' -v k="$key" '$1 == k {print $2}' <<<"$outputs")"
  [ -n "$fn" ] || fail "no output $key"
  want="$(openssl dgst -sha256 -binary "$b" | base64)"
  got="$(aws lambda get-function --function-name "$fn" --query Configuration.CodeSha256 --output text)"
  [ "$got" = "$want" ] || fail "$fn runs code $got, uploaded $want"
  n=$((n + 1))
done
[ "$n" = 13 ] || fail "$n zips in $lambda_dir, expected 13"
ok "all 13 functions run the uploaded zips"

# --- second run: an update of the same stack (or nothing to update), outputs printed again
deploy >"$work/out2" 2>"$work/err2" || { cat "$work/err2" >&2; fail "deploy.sh (update) failed"; }
grep -qE "deploy: (updating stack|stack .* is up to date)" "$work/err2" || fail "second run: $(cat "$work/err2")"
cmp -s "$work/out1" "$work/out2" || fail "outputs changed on a second deploy"
[ "$(secret)" = "$link1" ] || fail "the second deploy changed the link secret (every link sent would break)"
status="$(aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].StackStatus' --output text)"
case "$status" in CREATE_COMPLETE|UPDATE_COMPLETE) ;; *) fail "stack in $status after the second run" ;; esac
ok "second deploy.sh run: $(grep -oE 'updating stack|is up to date' "$work/err2" | head -1), $status, same outputs"
echo "check-deploy: infra/deploy.sh deploys through S3 on $endpoint"
