#!/usr/bin/env bash
# Runs the whole of fmn on this machine: installs what is missing (first run only), starts
# the embedded AWS emulator (moto server on 127.0.0.1:5100, or a LocalStack already on
# 127.0.0.1:4566), deploys infra/template.yaml to it, runs the functions in the local
# runtime and the bridge, replays real Fedora messages onto a local fedmsg publisher, and
# prints every email as it is accepted; the web app is at http://127.0.0.1:8080/ (sign in at
# the development OpenID provider it starts on 127.0.0.1:8090). Ctrl-C stops everything.
#
# Options are passed to `fmn-local up` (see `--help`): --moto-port, --fedmsg-port,
# --interval-ms, --preferences FILE, --messages FILE, --localstack-url URL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'up: %s\n' "$*" >&2; }
say "checking what is installed (localstack/bootstrap.sh; the first run installs packages)"
bash "$root/localstack/bootstrap.sh"
cd "$root"
if [ ! -x "${CARGO_TARGET_DIR:-target}/debug/fmn-local" ]; then
  say "building fmn-local for the first time: this takes several minutes on a small machine" \
    "(cargo's progress follows); later starts only rebuild what changed"
else
  say "building fmn-local (only what changed), then starting it"
fi
# Not --quiet: cargo's "Compiling ..." lines are the progress of a first build.
exec cargo run --package fmn-local --bin fmn-local -- up "$@"
