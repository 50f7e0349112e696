#!/usr/bin/env bash
# Runs the whole of fmn on this machine: installs what is missing (first run only), starts
# the embedded AWS emulator (moto server on 127.0.0.1:5100, or a LocalStack already on
# 127.0.0.1:4566), deploys infra/template.yaml to it, runs the functions in the local
# runtime and the bridge, replays real Fedora messages onto a local fedmsg publisher, and
# prints every email as it is accepted. Ctrl-C stops everything.
#
# Options are passed to `fmn-local up` (see `--help`): --moto-port, --fedmsg-port,
# --interval-ms, --preferences FILE, --messages FILE.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/localstack/bootstrap.sh"
cd "$root"
exec cargo run --quiet --package fmn-local --bin fmn-local -- up "$@"
