#!/usr/bin/env bash
# Runs every test: formatting, lints, the template lint, unit and integration tests, and the
# end-to-end tests against a real moto server, real ZeroMQ sockets and cargo-lambda.
# Installs what is missing first (localstack/bootstrap.sh). A missing service fails the run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash localstack/bootstrap.sh

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cfn-lint infra/template.yaml"
bash infra/lint.sh

step "AWS limits the emulators do not check, alarms and concurrency limits (infra/check-limits.py, infra/check-operations.py, tests/test_*.py)"
.venv/bin/python infra/check-limits.py
.venv/bin/python infra/check-operations.py
.venv/bin/python -m unittest discover -s tests -p 'test_*.py'

start_moto() { # sets port and moto_pid
  port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  .venv/bin/python localstack/moto_server.py -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/moto-api/data.json" >/dev/null 2>&1 && break
    sleep 0.1
  done
}
stop_moto() { kill "$moto_pid" 2>/dev/null || true; trap - EXIT; }

step "the template deploys on moto server (infra/check-moto.sh)"
start_moto
bash infra/check-moto.sh "http://127.0.0.1:$port" | tail -n 3
stop_moto

step "build the tests, and the matcher binary that the cargo-lambda test runs"
cargo build --quiet --package fmn-matcher-fn --bin fmn-matcher
cargo nextest run --workspace --no-run --cargo-quiet

step "infra/deploy.sh end to end on moto server (infra/check-deploy.sh)"
# The zips deploy.sh uploads, laid out as cargo-lambda writes them: the matcher's is its real
# debug binary (built above), the other twelve hold a small placeholder bootstrap. moto cannot
# run a function without Docker, so what this step proves is the deploy path (upload, template
# through S3, every function on its uploaded zip, update in place); building twelve more
# binaries with their own feature set would add minutes of CI for nothing it checks. The
# functions' builds are checked by clippy, their handlers by the tests below, and a binary as
# a real Lambda by the cargo-lambda test.
fns=(matcher email-sender irc-sender matrix-sender webhook-sender push-sender inbox-sender websocket feed-writer digest ownership-sync preferences-snapshot api)
placeholder="$(mktemp)"
printf '#!/bin/sh\necho "placeholder bootstrap (tests/run.sh)" >&2\nexit 1\n' >"$placeholder"
for f in "${fns[@]}"; do
  bin="$placeholder"; [ "$f" = matcher ] && bin="target/debug/fmn-matcher"
  .venv/bin/python infra/zip-bootstrap.py "$bin" "target/lambda-debug/fmn-$f/bootstrap.zip"
done
rm -f "$placeholder"
start_moto
bash infra/check-deploy.sh "http://127.0.0.1:$port" target/lambda-debug
stop_moto

step "cargo nextest (unit, integration and end-to-end tests)"
cargo nextest run --workspace --no-fail-fast --failure-output final

step "doc tests"
cargo test --workspace --doc --quiet
