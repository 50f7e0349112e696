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

step "AWS limits the emulators do not check (infra/check-limits.py, tests/test_limits.py)"
.venv/bin/python infra/check-limits.py
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
# The 9 functions' debug binaries, zipped as cargo-lambda lays them out (a cargo-lambda
# release build of 9 functions is too slow for CI on 2 cores; see docs/infra.md).
fns=(matcher email-sender irc-sender matrix-sender webhook-sender feed-writer digest ownership-sync api)
pkg_args=()
for f in "${fns[@]}"; do pkg_args+=(--package "fmn-$f-fn" --bin "fmn-$f"); done
cargo build --quiet "${pkg_args[@]}"
for f in "${fns[@]}"; do
  .venv/bin/python infra/zip-bootstrap.py "target/debug/fmn-$f" "target/lambda-debug/fmn-$f/bootstrap.zip"
done
start_moto
bash infra/check-deploy.sh "http://127.0.0.1:$port" target/lambda-debug
stop_moto

step "cargo nextest (unit, integration and end-to-end tests)"
cargo nextest run --workspace --no-fail-fast --failure-output final

step "doc tests"
cargo test --workspace --doc --quiet
