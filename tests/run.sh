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

step "the template deploys on moto server (infra/check-moto.sh)"
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/python localstack/moto_server.py -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/moto-api/data.json" >/dev/null 2>&1 && break
  sleep 0.1
done
bash infra/check-moto.sh "http://127.0.0.1:$port" | tail -n 3
kill "$moto_pid" 2>/dev/null || true
trap - EXIT

step "build the tests, and the matcher binary that the cargo-lambda test runs"
cargo build --quiet --package fmn-matcher-fn --bin fmn-matcher
cargo nextest run --workspace --no-run --cargo-quiet

step "cargo nextest (unit, integration and end-to-end tests)"
cargo nextest run --workspace --no-fail-fast --failure-output final

step "doc tests"
cargo test --workspace --doc --quiet
