#!/usr/bin/env bash
# Lints ../../openapi.json (or $1) with Redocly CLI, using redocly.yaml
# (recommended-strict: warnings are errors).  Exits non-zero on any problem.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

spec=${1:-../../openapi.json}
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true DO_NOT_TRACK=1

if [ ! -x node_modules/.bin/redocly ]; then
    echo "validate-openapi: node_modules missing; run 'npm ci' in $(pwd) (or run.sh)" >&2
    exit 1
fi
# --lint-config=error: a mistake in redocly.yaml fails too, rather than
# silently linting with a different rule set.
node_modules/.bin/redocly lint --config redocly.yaml --lint-config error \
    --format stylish --max-problems 1000 "$spec"
