#!/usr/bin/env bash
# The container's PID 1 (deploy/Dockerfile): migrates the database, then
# starts the worker pool (spawn-fcgi), nginx and the publisher.  SIGTERM or
# SIGINT stops all three and exits 0; if one of them dies on its own the
# others are stopped and the exit status is 1, so that the container's
# restart policy brings the whole service back.
#
# Started as root (the image), the pool's workers and the publisher run as
# ORDERS_USER and nginx's workers as www-data (its nginx.conf); the socket is
# ORDERS_USER:WEB_GROUP 0660.  The paths are variables so that
# tests/integration/test_install.py runs this very script against a staged
# install; their defaults are the image's.
set -euo pipefail

bindir=${ORDERS_BINDIR:-/usr/bin}
state_dir=${STATE_DIR:-/var/lib/orders}
socket=${SOCKET:-/run/orders/orders.sock}
nginx_conf=${NGINX_CONF:-/etc/nginx/nginx.conf}
orders_user=${ORDERS_USER:-orders}
web_group=${WEB_GROUP:-www-data}
export RUNTIME_DIR=${RUNTIME_DIR:-$state_dir}
export DATABASE_PATH=${DATABASE_PATH:-$state_dir/orders.db}
export WORKER_USER=${WORKER_USER:-$orders_user}
# Twice the CPUs, as the systemd unit starts (deploy/orders.default says
# why); orders-fcgi alone and scripts/run-stack take the CPUs.
export WORKERS=${WORKERS:-$(( $(nproc) * 2 ))}

say() { printf 'orders-entrypoint: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# Replaces the calling (sub)shell, so that a background `exec_as_orders
# cmd &` leaves $! the command's own pid, the one stop_all signals.
exec_as_orders() {
    if is_root; then
        exec setpriv --reuid="$orders_user" --regid="$orders_user" --init-groups -- "$@"
    fi
    exec "$@"
}

# The volume may be new (root-owned) or come from an older container.
umask 027
mkdir -p "$state_dir" "$(dirname "$socket")"
if is_root; then
    id "$orders_user" >/dev/null 2>&1 || die "user $orders_user does not exist"
    chown -R "$orders_user:$orders_user" "$state_dir"
    chmod 0700 "$state_dir"
    chmod 0755 "$(dirname "$socket")"
fi

# No secret given: one is generated once into the volume (mode 0600) and
# read from there (RUNTIME_DIR/jwt-secret); `orders-token` in the container
# reads it the same way.
if [ -z "${JWT_SECRET_KEY:-}" ] && [ ! -s "$RUNTIME_DIR/jwt-secret" ]; then
    (umask 077 && head -c 48 /dev/urandom | base64 -w0 > "$RUNTIME_DIR/jwt-secret.tmp" &&
        mv "$RUNTIME_DIR/jwt-secret.tmp" "$RUNTIME_DIR/jwt-secret")
    ! is_root || chown "$orders_user:$orders_user" "$RUNTIME_DIR/jwt-secret"
    say "generated a JWT secret in $RUNTIME_DIR/jwt-secret"
fi

# A bad publisher setting stops the container here with one line naming it.
"$bindir/orders-publisher" --check-config >/dev/null || exit 2

# NGINX_SITE (set by the image): the nginx site, rendered at each start by
# orders-nginx-site from the container's own settings (REQUEST_TIMEOUT,
# UPSTREAM_KEEPALIVE), as a host renders it from /etc/default/orders, so
# nginx gives up on a request when the service does.  NGINX_LISTEN (80) and
# NGINX_LOG_DIR (the site's default, /var/log/nginx) for other layouts.
if [ -n "${NGINX_SITE:-}" ]; then
    site_args=(--settings /dev/null --listen "${NGINX_LISTEN:-80}" --socket "$socket" --output "$NGINX_SITE")
    [ -z "${NGINX_LOG_DIR:-}" ] || site_args+=(--access-log "$NGINX_LOG_DIR/orders-access.log"
                                               --error-log "$NGINX_LOG_DIR/orders-error.log")
    "$bindir/orders-nginx-site" "${site_args[@]}" || die "the nginx site was not rendered"
fi

# orders-fcgi drops to WORKER_USER itself when root.
"$bindir/orders-fcgi" --migrate >&2 || die "migration failed"

pids=()
stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f "$socket"
}
# shellcheck disable=SC2317  # a trap handler
on_signal() {
    say "stopping"
    trap - INT TERM
    stop_all
    say "stopped"
    exit 0
}
trap on_signal INT TERM

rm -f "$socket"
spawn_args=(-n -s "$socket" -M 0660)
! is_root || spawn_args+=(-U "$orders_user" -G "$web_group")
spawn-fcgi "${spawn_args[@]}" -- "$bindir/orders-fcgi" &
pids+=($!)
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
[ -S "$socket" ] || { stop_all; die "the worker pool did not create $socket"; }

nginx -c "$nginx_conf" ${NGINX_ERROR_LOG:+-e "$NGINX_ERROR_LOG"} -g 'daemon off;' &
pids+=($!)

exec_as_orders "$bindir/orders-publisher" &
pids+=($!)

say "serving (pool on $socket, $WORKERS workers)"
set +e
wait -n "${pids[@]}"
status=$?
set -e
say "a component exited unexpectedly (status $status); stopping the rest"
trap - INT TERM
stop_all
exit 1
