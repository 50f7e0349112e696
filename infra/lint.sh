#!/usr/bin/env bash
# Lints the CloudFormation template with cfn-lint; fails on any error or
# warning (informational findings are reported too and also fail, so the
# template stays clean at every level).
# Usage: infra/lint.sh [extra cfn-lint args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$root/.venv/bin/cfn-lint" ]; then cfn_lint="$root/.venv/bin/cfn-lint"
elif command -v cfn-lint >/dev/null 2>&1; then cfn_lint="cfn-lint"
else echo "lint: cfn-lint not found (run localstack/bootstrap.sh)" >&2; exit 1
fi
"$cfn_lint" --include-checks I "$@" -- "$root/infra/template.yaml"
echo "lint: infra/template.yaml clean"
