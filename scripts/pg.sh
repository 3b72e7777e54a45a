#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the load figures: nothing is assumed to be
# running already, and nothing outside its directory is touched.
#
#   eval "$(scripts/pg.sh start [DIR])"  # initdb + start; prints the exports below
#   scripts/pg.sh stop [DIR]             # stop it and delete its directory
#
# Exports TESSERA_TEST_POSTGRES (a URL to the cluster's `postgres` database) and
# TESSERA_PG_DIR. The cluster listens on 127.0.0.1 on a free port, trusts local connections,
# and runs with fsync off (a test cluster: a power cut may lose it, never a test's result);
# TESSERA_PG_DURABLE=1 keeps fsync on (load figures), with synchronous_commit off either way.
# PostgreSQL refuses to run as root: as root, the cluster is run by the `postgres` user that
# Debian's package creates (scripts/setup.sh installs the package where it is missing).
set -euo pipefail

cmd="${1:-}"
dir="${2:-${TESSERA_PG_DIR:-/tmp/tessera-pg}}"

bin=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/initdb" ] && bin="$candidate"
done
if [ -z "$bin" ]; then
  echo "pg.sh: no PostgreSQL server found under /usr/lib/postgresql (run scripts/setup.sh)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    if [ -f "$dir/data/postmaster.pid" ]; then
      "$0" stop "$dir" >&2 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
synchronous_commit = off
shared_buffers = 256MB
EOF
    if [ -z "${TESSERA_PG_DURABLE:-}" ]; then
      printf 'fsync = off\nfull_page_writes = off\n' >>"$dir/data/postgresql.conf"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "export TESSERA_PG_DIR='$dir'"
    echo "export TESSERA_TEST_POSTGRES='postgres://postgres@127.0.0.1:$port/postgres'"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: scripts/pg.sh start|stop [DIR]" >&2
    exit 2
    ;;
esac
