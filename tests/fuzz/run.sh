#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer targets and run each for a bounded
# time.
#
# usage: tests/fuzz/run.sh [target...]     (default: every fuzz_*.c here)
#
# A target is named by its file less "fuzz_" and ".c": order_create,
# order_update, page_query, traceparent, router, request, auth, jwks.
#
# For each target: every file in regressions/<target>/ is replayed once
# (crashes found earlier must stay fixed), then the target fuzzes for
# FUZZ_SECONDS (default 20) starting from a copy of corpus/<target>/ in a
# temporary directory; the repository is never written to.  Targets run two
# at a time (FUZZ_JOBS).  The script exits non-zero when a target fails to
# build or crashes; a crash prints the input's path (kept under
# FUZZ_CRASH_DIR, default a fresh /tmp/orders-fuzz-crashes.*) and base64,
# ready to be saved as regressions/<target>/<name>.
#
# Environment: FUZZ_SECONDS, FUZZ_JOBS, FUZZ_CRASH_DIR, CC (default clang).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
cc=${CC:-clang}
# meson may hand us its own CC (gcc); libFuzzer needs clang.
case "$cc" in *clang*) ;; *) cc=clang ;; esac

command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (apt-get install clang)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orders-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
crashes=${FUZZ_CRASH_DIR:-}

# --- which targets ---------------------------------------------------------
targets=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t=${t#fuzz_}; t=${t%.c}
        [ -f "$here/fuzz_$t.c" ] || { echo "fuzz: no target $t (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
        targets+=("$t")
    done
else
    for f in "$here"/fuzz_*.c; do
        t=$(basename "$f" .c); targets+=("${t#fuzz_}")
    done
fi

# --- build -----------------------------------------------------------------
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)
cflags=(-g -O1 -std=c17 -D_GNU_SOURCE "-DORDERS_VERSION=\"$version\""
        -Wall -Wextra -Werror -fno-omit-frame-pointer
        -fno-sanitize-recover=undefined -I "$root/core" -I "$root/common" -I "$root/adapters")
read -r -a libs <<<"$(pkg-config --libs libcjson libjwt sqlite3 libcrypto libpq)"
read -r -a incs <<<"$(pkg-config --cflags libcjson libjwt sqlite3 libcrypto libpq)"
cflags+=("${incs[@]}")

# The documents and migrations compiled in, exactly as core/meson.build and
# adapters/meson.build generate them.
mkdir -p "$work/gen" "$work/obj" "$work/bin"
"$cc" -O1 -o "$work/gen/embed" "$root/tools/embed.c"
"$work/gen/embed" blob "$work/gen/embedded_openapi.c" embedded_openapi "$root/openapi.json"
mapfile -t migrations < <(printf '%s\n' "$root"/migrations/*.sql | LC_ALL=C sort)
"$work/gen/embed" list "$work/gen/embedded_sqlite_migrations.c" embedded_sqlite_migrations "${migrations[@]}"
mapfile -t pg_migrations < <(printf '%s\n' "$root"/migrations/postgres/*.sql | LC_ALL=C sort)
"$work/gen/embed" list "$work/gen/embedded_postgres_migrations.c" embedded_postgres_migrations "${pg_migrations[@]}"

# core/, the common/ plumbing it uses and the store adapters, as the real
# build lists them, instrumented once into an archive; each target links
# only the objects it needs from it.
mapfile -t core_sources < <(sed -n '/^core_sources *= *files(/,/)/p' "$root/core/meson.build" |
    grep -o "'[^']*\.c'" | tr -d "'" | sed "s|^|$root/core/|")
mapfile -t -O "${#core_sources[@]}" core_sources < <(
    sed -n '/^common_lib *= *static_library(/,/)/p' "$root/common/meson.build" |
    grep -o "'[^']*\.c'" | tr -d "'" | sed "s|^|$root/common/|")
mapfile -t -O "${#core_sources[@]}" core_sources < <(
    sed -n '/^adapters_sources *= *files(/,/)/p' "$root/adapters/meson.build" |
    grep -o "'[^']*\.c'" | tr -d "'" | sed "s|^|$root/adapters/|")
core_sources+=("$work/gen/embedded_openapi.c" "$work/gen/embedded_sqlite_migrations.c"
              "$work/gen/embedded_postgres_migrations.c")
echo "fuzz: building ${#core_sources[@]} core sources and ${#targets[@]} targets with $("$cc" --version | head -n 1)"
export cc work
printf '%s\n' "${core_sources[@]}" |
    xargs -P "$jobs" -I{} sh -c 'src=$1; shift; "$cc" "$@" -fsanitize=fuzzer-no-link,address,undefined -c "$src" -o "$work/obj/$(basename "$src" .c).o"' sh {} "${cflags[@]}" ||
    { echo "fuzz: core/ does not build" >&2; exit 1; }
ar rcs "$work/libcore.a" "$work"/obj/*.o
# Test helpers: the unit tests' token minting (libjwt, not the code under
# test), which fuzz_request uses for its "@rw"... tokens.
mkdir -p "$work/objtest"
"$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link,address,undefined \
    -c "$root/tests/unit/mint.c" -o "$work/objtest/mint.o" ||
    { echo "fuzz: tests/unit/mint.c does not build" >&2; exit 1; }
ar rcs "$work/libtesthelp.a" "$work"/objtest/*.o

# The targets, $jobs at a time as the sources above (a compile and a link
# each, seconds of one core apiece).
build_target() {
    "$cc" "${cflags[@]}" -fsanitize=fuzzer,address,undefined \
        -I "$root/tests/unit" "$here/fuzz_$1.c" "$work/libtesthelp.a" "$work/libcore.a" \
        "${libs[@]}" -lm -o "$work/bin/fuzz_$1"
}
building=0
for t in "${targets[@]}"; do
    if [ $building -ge "$jobs" ]; then
        wait -n || true # a target that failed to build has no binary: named below
        building=$((building - 1))
    fi
    build_target "$t" &
    building=$((building + 1))
done
wait || true
build_failed=()
for t in "${targets[@]}"; do
    [ -x "$work/bin/fuzz_$t" ] || build_failed+=("$t")
done
if [ ${#build_failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED to build: ${build_failed[*]}" >&2
    exit 1
fi

# --- run -------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

max_len_of() {
    case "$1" in
        auth) echo 10000 ;;
        jwks) echo 8192 ;;
        request) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

# Runs one target: regressions, then fuzzing.  Writes its summary line to
# $work/result/<t> and returns non-zero on a crash.
run_target() {
    set +e +o pipefail # a grep that finds nothing is not a failure here
    local t=$1 bin="$work/bin/fuzz_$1" log="$work/log/$1.log"
    local tmp="$work/tmp/$t" corpus="$work/corpus/$t" art="$work/artifacts/$t"
    mkdir -p "$tmp" "$corpus" "$art"
    local common=(-rss_limit_mb=2048 -timeout=25 "-max_len=$(max_len_of "$t")"
                  "-artifact_prefix=$art/")

    local regressions=()
    if [ -d "$here/regressions/$t" ]; then
        while IFS= read -r -d '' f; do regressions+=("$f"); done < <(
            find "$here/regressions/$t" -type f ! -name '.*' ! -name 'README*' -print0 | sort -z)
    fi
    if [ ${#regressions[@]} -gt 0 ]; then
        if ! TMPDIR="$tmp" "$bin" "${common[@]}" "${regressions[@]}" >"$log.regress" 2>&1; then
            {
                echo "$t: REGRESSION: an input of regressions/$t/ fails again"
                grep -E '^(Running: |==[0-9]+==ERROR|SUMMARY|fuzz_[a-z_]+:)|runtime error' \
                    "$log.regress" | tail -n 12 | sed 's/^/    /'
            } >"$work/result/$t"
            return 1
        fi
    fi

    if [ -d "$here/corpus/$t" ]; then
        cp -R "$here/corpus/$t/." "$corpus/"
    fi
    local rc=0
    TMPDIR="$tmp" "$bin" "${common[@]}" -max_total_time="$seconds" \
        -print_final_stats=1 "$corpus" >"$log" 2>&1 || rc=$?

    local execs rate cov ft corp
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n 1 | cut -d' ' -f2)
    local summary
    summary=$(printf '%-13s %s execs (%s/s), %s regressions replayed, cov %s, ft %s, corpus %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${#regressions[@]}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    if [ $rc -eq 0 ]; then
        echo "$summary: ok" >"$work/result/$t"
        return 0
    fi

    # A crash (or leak, timeout, OOM): keep the input where it survives us.
    mkdir -p "$crashes/$t"
    cp "$log" "$crashes/$t/fuzz.log"
    {
        echo "$summary: CRASH (exit $rc)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z_]+:)|runtime error' "$log" | head -n 10 | sed 's/^/    /'
        local found=0 f
        for f in "$art"/*; do
            [ -f "$f" ] || continue
            found=1
            cp "$f" "$crashes/$t/"
            echo "    input: $crashes/$t/$(basename "$f")"
            echo "    base64: $(base64 -w0 "$f")"
        done
        [ $found -eq 1 ] || echo "    (no input saved; see the log)"
        echo "    log: $crashes/$t/fuzz.log"
        echo "    keep it: cp <input> tests/fuzz/regressions/$t/"
    } >"$work/result/$t"
    return 1
}

mkdir -p "$work/log" "$work/result" "$work/tmp" "$work/corpus" "$work/artifacts"
if [ -z "$crashes" ]; then
    # Decided up front so that the parallel jobs share it.
    crashes=$(mktemp -d /tmp/orders-fuzz-crashes.XXXXXX)
    keep_crashes=0
else
    mkdir -p "$crashes"
    keep_crashes=1
fi

start=$(date +%s)
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
failed=0
running=0
for t in "${targets[@]}"; do
    if [ $running -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    run_target "$t" &
    running=$((running + 1))
done
while [ $running -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done

for t in "${targets[@]}"; do
    cat "$work/result/$t" 2>/dev/null || { echo "$t: no result"; failed=1; }
done
# An empty crash directory is noise; one with a crash in it stays.
if [ $keep_crashes -eq 0 ] && [ -z "$(ls -A "$crashes")" ]; then
    rmdir "$crashes"
fi
echo "fuzz: done in $(( $(date +%s) - start ))s of fuzzing; $( [ $failed -eq 0 ] && echo 'no crash' || echo 'FAILURES above')"
exit $failed
