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

step "build the matcher for cargo lambda watch (its own target dir: cargo test holds the lock)"
CARGO_TARGET_DIR=target/lambda-watch cargo build --quiet --package fmn-matcher-fn --bin fmn-matcher

step "cargo test"
cargo test --workspace --no-fail-fast
