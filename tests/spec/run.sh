#!/usr/bin/env bash
# Validates the project's API descriptions: openapi.json (Redocly lint,
# recommended-strict) and asyncapi.json (AsyncAPI parser, example payloads,
# order schemas shared with openapi.json), then self-tests the
# captured-response and event checkers.  Meant to be run by a meson test;
# works from any directory.  Runs every step; exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true DO_NOT_TRACK=1
export npm_config_update_notifier=false

# (Re)install when node_modules is missing or was installed from another
# package-lock.json: the lock file's hash is stamped after a good install.
stamp=node_modules/.orders-spec-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    npm ci --no-audit --no-fund --ignore-scripts
    echo "$want" > "$stamp"
fi

status=0
step() {
    echo "== $*"
    if "$@"; then echo "ok: $*"; else echo "FAILED: $*"; status=1; fi
}
step bash validate-openapi.sh
step node validate-asyncapi.mjs
step node self-test.mjs
exit $status
