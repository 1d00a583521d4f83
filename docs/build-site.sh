#!/bin/sh
# Builds the /docs site into OUTDIR: installs the Swagger UI package pinned
# by package-lock.json (npm ci checks its integrity hash; no install
# scripts run) into WORKDIR and copies the few files the page loads, next
# to our own index.html and docs.js.  Called by docs/meson.build.
#
#   build-site.sh SRCDIR WORKDIR OUTDIR
set -eu
src=$1 work=$2 out=$3
mkdir -p "$work" "$out"
cp "$src/package.json" "$src/package-lock.json" "$work/"
# --prefer-offline: a machine that installed it once builds without network.
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline \
     --loglevel=error >/dev/null)
dist=$work/node_modules/swagger-ui-dist
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png; do
    cp "$dist/$f" "$out/$f"
done
cp "$src/index.html" "$src/docs.js" "$out/"
