#!/usr/bin/env bash
# Installs everything fmn needs on a fresh Debian machine, idempotently:
# Debian packages (ngircd, rabbitmq-server, chromium and chromium-driver for the web app's
# browser tests, dbus-daemon for the desktop popups' tests), axe-core from the npm registry (pinned, under .node/), and a project venv (.venv) with
# moto[server], cfn-lint, cargo-lambda, awscli, Synapse and schemathesis; LocalStack
# (localstack-core 4.9.2) in a venv of its own (.venv-localstack: its pins conflict with
# moto's, see localstack/requirements-localstack.txt); Fedora's schema packages and
# fedmsg.meta, the oracle of the differential tests, in .venv-oracle; FMN 3, the oracle of
# fmn's decisions, in .venv-fmn3; and cargo-nextest. Safe to run
# repeatedly; fast when done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.fmn-bootstrap-v4"

need_apt=()
command -v ngircd >/dev/null 2>&1 || [ -x /usr/sbin/ngircd ] || need_apt+=(ngircd)
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
# krb5-config: gssapi (pulled by fedmsg_meta_fedora_infrastructure, in .venv-oracle) builds against it.
command -v krb5-config >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# dbus-daemon: a private session bus for fmn-desktop's popup tests (clients/desktop/tests).
command -v dbus-daemon >/dev/null 2>&1 || need_apt+=(dbus-daemon)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: apt-get install ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -f "$stamp" ]; then
  echo "bootstrap: creating $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$root/localstack/requirements.txt"
  touch "$stamp"
fi

# LocalStack, for the tests that check fmn against a stricter emulator (tests/run.sh).
ls_venv="$root/.venv-localstack"
ls_stamp="$ls_venv/.fmn-localstack-v1"
if [ ! -f "$ls_stamp" ]; then
  echo "bootstrap: creating $ls_venv (LocalStack)" >&2
  python3 -m venv "$ls_venv"
  "$ls_venv/bin/pip" install -q --upgrade pip
  "$ls_venv/bin/pip" install -q -r "$root/localstack/requirements-localstack.txt"
  touch "$ls_stamp"
fi

# Fedora's own code as the oracle of the differential tests (tests/oracle/): fedora-messaging,
# every schema package on PyPI, fedmsg.meta with Fedora's processors, in .venv-oracle (its
# setuptools and pyOpenSSL pins conflict with the project venv's). The stamp holds the hash
# of the requirements, so a changed pin reinstalls.
or_venv="$root/.venv-oracle"
or_req="$root/localstack/requirements-oracle.txt"
or_hash="$(sha256sum "$or_req" | cut -c1-16)"
or_stamp="$or_venv/.fmn-oracle-$or_hash"
if [ ! -f "$or_stamp" ]; then
  echo "bootstrap: creating $or_venv (Fedora's schema packages and fedmsg.meta)" >&2
  rm -rf "$or_venv"
  python3 -m venv "$or_venv"
  "$or_venv/bin/pip" install -q --upgrade pip
  "$or_venv/bin/pip" install -q -r "$or_req"
  touch "$or_stamp"
fi

# FMN 3 (fmn 3.4.0 from PyPI), the oracle of fmn's decisions after `fmn import fmn3`
# (tests/oracle/fmn3_driver.py), in .venv-fmn3: it pins its own FastAPI/pydantic/SQLAlchemy
# stack. Same hash stamp as .venv-oracle.
f3_venv="$root/.venv-fmn3"
f3_req="$root/localstack/requirements-fmn3.txt"
f3_hash="$(sha256sum "$f3_req" | cut -c1-16)"
f3_stamp="$f3_venv/.fmn-fmn3-$f3_hash"
if [ ! -f "$f3_stamp" ]; then
  echo "bootstrap: creating $f3_venv (FMN 3)" >&2
  rm -rf "$f3_venv"
  python3 -m venv "$f3_venv"
  "$f3_venv/bin/pip" install -q --upgrade pip
  "$f3_venv/bin/pip" install -q -r "$f3_req"
  touch "$f3_stamp"
fi

# The test runner (tests/run.sh): cargo-nextest, from crates.io when the machine lacks it.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "bootstrap: cargo install cargo-nextest" >&2
  cargo install --locked --quiet cargo-nextest
fi

# axe-core, the accessibility checker the web app's browser tests inject into each page.
axe_version="4.10.3"
axe="$root/.node/node_modules/axe-core"
if [ ! -f "$axe/axe.min.js" ] || ! grep -q "\"version\": \"$axe_version\"" "$axe/package.json" 2>/dev/null; then
  echo "bootstrap: npm install axe-core@$axe_version (into .node/)" >&2
  mkdir -p "$root/.node"
  npm install --silent --no-save --no-audit --no-fund --prefix "$root/.node" "axe-core@$axe_version" >/dev/null
fi
