#!/usr/bin/env bash
# The Orders Service benchmark, in one command, from any directory:
#
#   tests/bench/run.sh                     # default: 10 s per scenario, 1 run
#   BENCH_SECONDS=5 BENCH_SCALES=1000 tests/bench/run.sh     # quick
#   BENCH_RUNS=3 tests/bench/run.sh        # careful: the median of 3 runs
#
# It installs what is missing (Debian packages, as root; otherwise it prints
# the apt-get line), builds the service in build-bench/ (meson, release) and
# the benchmark's two C programs, then runs tests/bench/bench.py: the storage
# limit, the nginx and FastCGI ceilings and every scenario against the real
# stack (scripts/run-stack) on free loopback ports, in a temporary
# directory, and prints a Markdown report on stdout (progress on stderr).
#
# Settings (environment): BENCH_SECONDS (10), BENCH_RUNS (1), BENCH_WARMUP
# (1), BENCH_SCALES ("1000 1000000"), BENCH_THREADS (2), BENCH_CONNECTIONS
# (32), WORKERS (nproc), DB_SYNCHRONOUS (full), BENCH_ENGINES ("sqlite
# postgres" when PostgreSQL 15 is installed, else "sqlite"; naming postgres
# installs it, as root, or stops), BENCH_PG_SCALES (the first of
# BENCH_SCALES), BENCH_OUT (also write the report there), BENCH_KEEP=1 (keep
# the temporary directory: logs, wrk output, report.md), TMPDIR (where the
# temporary directory, and so the databases, go).  tests/bench/README.md
# lists them all.
#
# Every process it starts is stopped, and the temporary directory removed,
# when it ends, fails or is interrupted (Ctrl-C, SIGTERM).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ---- what the machine needs
"$root/scripts/install-deps" run
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v findmnt >/dev/null 2>&1 || missing+=(util-linux)
# PostgreSQL only when asked for by name (by default bench.py measures it
# when it is installed, and says so in the report when it is not).
case " ${BENCH_ENGINES:-} " in
*" postgres "*)
    [ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/postgres" ] || missing+=(postgresql-15)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)
    ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages; as root run: apt-get update && apt-get install -y ${missing[*]}"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# ---- the service, built for speed
build=${BENCH_BUILD_DIR:-$root/build-bench}
if [ ! -f "$build/build.ninja" ]; then
    say "configuring $build (release)"
    meson setup "$build" "$root" --buildtype=release >/dev/null
fi
say "building $build"
ninja -C "$build" fcgi/orders-fcgi publisher/orders-publisher >/dev/null
ninja -C "$build" tools/orders-token >/dev/null 2>&1 ||
    say "tools/orders-token is not buildable here; tokens will be minted in Python"

# ---- a temporary directory for everything else; cleaned up on any exit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orders-bench.XXXXXX")
# As root the workers run as www-data and must reach their runtime dirs.
[ "$(id -u)" -ne 0 ] || chmod 0755 "$tmp"
py_pid=

kill_sessions() {
    # every session bench.py started (run-stack, nginx): whatever is left
    [ -f "$tmp/sessions" ] || return 0
    local sid pid
    while read -r sid; do
        [ -n "$sid" ] || continue
        for pid in $(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s { print $1 }'); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done < "$tmp/sessions"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
        kill -TERM "$py_pid" 2>/dev/null || true
        # bench.py stops what it started; bounded wait, then the hard way
        for _ in $(seq 300); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$py_pid" 2>/dev/null || true
        wait "$py_pid" 2>/dev/null || true
    fi
    kill_sessions
    if [ -n "${BENCH_KEEP:-}" ]; then
        say "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the benchmark's own programs
cflags=(-O2 -Wall -Wextra -Werror -std=c17 -D_GNU_SOURCE)
# shellcheck disable=SC2046
gcc "${cflags[@]}" -pthread -o "$tmp/empty_responder" "$here/empty_responder.c" \
    $(pkg-config --cflags --libs fcgi)
# shellcheck disable=SC2046
gcc "${cflags[@]}" -o "$tmp/storage_limit" "$here/storage_limit.c" \
    $(pkg-config --cflags --libs sqlite3)

export BENCH_TMP=$tmp BENCH_BUILD_DIR=$build
export BENCH_RESPONDER=$tmp/empty_responder BENCH_STORAGE=$tmp/storage_limit
# In the background so that a signal to this script reaches the trap at
# once; the trap passes it on to bench.py.
python3 "$here/bench.py" &
py_pid=$!
set +e
wait "$py_pid"
rc=$?
set -e
py_pid=
exit "$rc"
