#!/usr/bin/env bash
# Make sure a throw-away PostgreSQL server runs on loopback for the tests,
# installing it from Debian when it is missing. Prints the connection URL.
#
#   export ZERODROP_TEST_POSTGRES=$(scripts/postgres.sh)
#
# The cluster lives in ${ZERODROP_PG_DIR:-/tmp/zerodrop-pg} and listens on
# 127.0.0.1:${ZERODROP_PG_PORT:-54329}; it is reused when already running.
set -euo pipefail

port=${ZERODROP_PG_PORT:-54329}
dir=${ZERODROP_PG_DIR:-/tmp/zerodrop-pg}
url="postgres://zerodrop@127.0.0.1:${port}/zerodrop?sslmode=disable"
log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

if ! bin=$(find_bin); then
  log "PostgreSQL server not found; installing it from Debian"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq postgresql >&2
  bin=$(find_bin) || { log "installing postgresql did not provide pg_ctl"; exit 1; }
fi

# PostgreSQL refuses to run as root: run the private cluster as 'postgres'
# (created by the Debian package) when we are root.
run_as() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

if run_as "'$bin/pg_ctl' -D '$dir' status" >/dev/null 2>&1; then
  echo "$url"
  exit 0
fi

if [ ! -f "$dir/PG_VERSION" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  run_as "'$bin/initdb' -D '$dir' -U zerodrop --auth=trust --no-sync -E UTF8" >&2
fi
run_as "'$bin/pg_ctl' -D '$dir' -l '$dir/server.log' -w -t 60 start -o \"-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=off -c max_connections=300\"" >&2
if ! run_as "'$bin/psql' -h 127.0.0.1 -p $port -U zerodrop -d postgres -tAc \"select 1 from pg_database where datname='zerodrop'\"" | grep -q 1; then
  run_as "'$bin/createdb' -h 127.0.0.1 -p $port -U zerodrop zerodrop" >&2
fi
log "running on 127.0.0.1:$port (data in $dir)"
echo "$url"
