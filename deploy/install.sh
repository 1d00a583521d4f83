#!/usr/bin/env bash
# Builds the Orders Service and installs it under PREFIX: the one build and
# install path of a host and of the container image (deploy/Dockerfile runs
# it; tests/integration/test_install.py runs it into a temporary DESTDIR).
#
#   deploy/install.sh                  as root: packages, build, install to /usr
#   DESTDIR=/tmp/root deploy/install.sh        staged install (packaging, tests)
#
# Environment:
#   PREFIX        /usr                  installation prefix (with /usr, meson
#                                       puts configuration under /etc and
#                                       state under /var)
#   BUILD_DIR     <source>/build-release  meson build directory (reused)
#   DESTDIR       unset                 staging root, as meson install --destdir
#   INSTALL_DEPS  1                     0: do not check the Debian packages
#
# It installs files only: creating the account, enabling the units and the
# nginx site are the operator's steps (README.md, "Deploying").
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${PREFIX:-/usr}
build=${BUILD_DIR:-$src/build-release}
destdir=${DESTDIR:-}

say() { printf 'install.sh: %s\n' "$*" >&2; }

if [ "${INSTALL_DEPS:-1}" != 0 ]; then
    # The same package list as the run command (scripts/install-deps run).
    "$src/scripts/install-deps" run
fi

setup_args=(--prefix="$prefix" --buildtype=release)
[ ! -f "$build/build.ninja" ] || setup_args+=(--reconfigure)
say "configuring $build (prefix $prefix)"
meson setup "$build" "$src" "${setup_args[@]}" >/dev/null
say "building"
ninja -C "$build"
install_args=(-C "$build" --no-rebuild)
[ -z "$destdir" ] || install_args+=(--destdir "$destdir")
say "installing${destdir:+ into $destdir}"
meson install "${install_args[@]}"
