#!/usr/bin/env bash
# Lints the CloudFormation template with cfn-lint; fails on any error or
# warning (informational findings are reported too and also fail, so the
# template stays clean at every level).
# The rules on AWS limits that the emulators do not enforce are mandatory (they
# run even if a template's Metadata tries to ignore them): E1002 template size
# (1 MB), E3010 resources (500), E6010 outputs (200), E3697 a function's literal
# environment (4 KB), E3505 a queue's visibility timeout at least its
# consumer's timeout. (E2010, parameters, does not fire in cfn-lint 1.58: its
# schema has no maximum.) infra/check-limits.py adds what cfn-lint does not
# compute: the 51,200-byte inline limit per deploy path, the parameter count,
# worst-case environments and role policies, 6 x visibility, DynamoDB keys.
# Usage: infra/lint.sh [extra cfn-lint args]   (TEMPLATE=file lints another file)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$root/.venv/bin/cfn-lint" ]; then cfn_lint="$root/.venv/bin/cfn-lint"
elif command -v cfn-lint >/dev/null 2>&1; then cfn_lint="cfn-lint"
else echo "lint: cfn-lint not found (run localstack/bootstrap.sh)" >&2; exit 1
fi
template="${TEMPLATE:-$root/infra/template.yaml}"
"$cfn_lint" --include-checks I --mandatory-checks E1002 E3010 E6010 E3697 E3505 \
  "$@" -- "$template"
echo "lint: $(basename "$template") clean"
